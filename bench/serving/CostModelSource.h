// Where a simulated benchmark's step-cost model comes from: a saved calibration (JSON), or a fresh
// calibration of the CPU backend on the artifact, saved for the next run.
#pragma once

#include <string>

#include "bench/serving/StepCostModel.h"
#include "runtime/Artifact.h"

namespace pagedc::bench {

struct CostModelRequest {
  std::string path;          // read when it exists (and recalibrate is false); written after a calibration; may be empty
  bool recalibrate = false;  // measure even when path exists
  int threads = 0;
  CalibrationOptions calibration;
};

// Throws Error naming the file when it exists but is not a cost model.
StepCostModel loadOrCalibrate(const Artifact& artifact, const CostModelRequest& request);

}  // namespace pagedc::bench
