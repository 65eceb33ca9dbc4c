// Why a sequence or a request ended: shared by the stop checker, the scheduler and the engine.
#pragma once

namespace pagedc {

enum class FinishReason {
  None,      // still generating
  Stop,      // an EOS or stop token sampled (after min_tokens), or a stop string ("stop" in the OpenAI response)
  Length,    // max_tokens generated, or the scheduler's maxModelLen reached ("length")
  Aborted,   // abort() by the caller
  Rejected,  // can never be scheduled (larger than the KV cache or the token budget)
};

inline const char* finishReasonName(FinishReason reason) {
  switch (reason) {
  case FinishReason::None: return "none";
  case FinishReason::Stop: return "stop";
  case FinishReason::Length: return "length";
  case FinishReason::Aborted: return "abort";
  case FinishReason::Rejected: return "rejected";
  }
  return "?";
}

}  // namespace pagedc
