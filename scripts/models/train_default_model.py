#!/usr/bin/env python3
"""Train pagedc's bundled default model and write models/default/.

A tiny Llama (LlamaForCausalLM, ~2.9M parameters) trained from scratch on the quotations of the
Debian package `fortunes` (the fortune-mod cookie files under /usr/share/games/fortunes), with a
byte-level BPE tokenizer (GPT-2 style, 2048 tokens) trained on the same text. Then exported to ONNX
exactly like the `llama-past` fixture (scripts/fixtures/export_fixtures.py: TorchScript exporter,
opset 17, eager attention, past_key_values inputs / present outputs), checked with onnxruntime, and
given goldens: onnxruntime prefill/decode outputs and transformers greedy/beam generations.

Run from the repository root, in the pinned fixtures venv (scripts/fixtures/requirements.txt):

    scripts/fixtures/setup_venv.sh                 # once
    nice -n 19 .venv-fixtures/bin/python scripts/models/train_default_model.py

Options: --out DIR (default models/default), --work DIR (default build-default-model/: the trained
HF checkpoint, ignored by git), --export-only (skip training, re-export from --work), --threads N.

Deterministic by construction (fixed seeds, sorted input files, seeded data order, fixed step
count); see models/README.md for what it produced and how long it took.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

# Threads that wait passively: on a shared machine spinning OpenMP workers slow training ~3x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import export_fixtures as ef  # noqa: E402  (offline env, imports torch/onnx/onnxruntime, export helpers)
import export_generate_goldens as eg  # noqa: E402  (transformers greedy / beam golden helpers)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

REPO = ef.REPO
FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_PACKAGES = ("fortunes", "fortunes-min")
# ascii-art is pictures, not text.
EXCLUDED_FILES = {"ascii-art"}

ARCH = "default"  # registered in export_fixtures.ARCHS so its export helpers see this shape
SEED = 20240611
EOT = "<|endoftext|>"
VOCAB = 2048
MODEL = dict(hidden=256, layers=4, heads=8, kv_heads=4, head_dim=32, ffn=512, vocab=VOCAB, max_pos=256)

# Training: packed sequences of SEQ_LEN tokens (documents "<|endoftext|> quote" back to back).
SEQ_LEN = 256
BATCH = 16
STEPS = 1200
WARMUP = 100
LR = 3e-3
MIN_LR_RATIO = 0.1
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
GRAD_CLIP = 1.0
VAL_FRACTION = 0.03
EVAL_EVERY = 200
LOG_EVERY = 25

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)

# Golden prompts: transformers greedy continuations (the tokenizer adds <|endoftext|> in front).
GOLDEN_PROMPTS = ("The meaning of life is", "A computer is", "Love is", "The best way to")
GOLDEN_MAX_NEW = (32, 32, 32, 32)
# (prompt index, num_beams, length_penalty, early_stopping, num_return_sequences, max_new_tokens)
GOLDEN_BEAM_CASES = ((0, 4, 1.0, True, 2, 16), (2, 2, 1.0, False, 1, 12))
SAMPLE_PROMPTS = GOLDEN_PROMPTS + ("Once upon a time", "Q: What is a programmer?\nA:")


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------

def package_versions() -> dict:
    out = {}
    for pkg in FORTUNES_PACKAGES:
        try:
            out[pkg] = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], check=True,
                                      capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out[pkg] = None
    return out


def read_fortunes() -> tuple[list[str], dict]:
    """Every quotation of the cookie files, in file-name order, cleaned, deduplicated."""
    if not FORTUNES_DIR.is_dir():
        raise SystemExit(f"{FORTUNES_DIR} not found: the training text comes from the Debian package "
                         f"'fortunes' (apt-get install fortunes)")
    files = sorted(p for p in FORTUNES_DIR.iterdir()
                   if p.is_file() and not p.is_symlink() and "." not in p.name and p.name not in EXCLUDED_FILES)
    if not files:
        raise SystemExit(f"{FORTUNES_DIR} holds no fortune files (apt-get install fortunes)")
    quotes, seen, per_file = [], set(), {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        count = 0
        for block in text.split("\n%\n"):
            lines = [line.rstrip() for line in block.split("\n") if line.strip() != "%"]
            quote = "\n".join(lines).strip("\n")
            if not quote.strip() or quote in seen:
                continue
            seen.add(quote)
            quotes.append(quote)
            count += 1
        per_file[path.name] = count
    return quotes, per_file


def split_train_val(quotes: list[str]) -> tuple[list[str], list[str]]:
    order = list(range(len(quotes)))
    random.Random(SEED).shuffle(order)
    n_val = int(len(quotes) * VAL_FRACTION)
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [quotes[i] for i in train], [quotes[i] for i in val]


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

def train_tokenizer(texts: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # Every document starts with <|endoftext|> in training, so a prompt gets one in front too.
    tok.post_processor = processors.TemplateProcessing(single=f"{EOT} $A", special_tokens=[(EOT, tok.token_to_id(EOT))])
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    assert tok.token_to_id(EOT) == 0
    return tok


def save_tokenizer(tok: Tokenizer, out: Path) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT,
                                   model_max_length=MODEL["max_pos"], clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    with_files = Path(out)
    fast.save_pretrained(str(with_files))
    # pagedc copies tokenizer_config.json (not chat_template.jinja): keep the template inside it.
    config_path = with_files / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHAT_TEMPLATE
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # what tokenizer.json-only repos name (transformers 4 and 5)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for extra in ("chat_template.jinja", "special_tokens_map.json"):
        (with_files / extra).unlink(missing_ok=True)
    # Normalise tokenizer.json's formatting (the library writes it on one line otherwise).
    tok_json = with_files / "tokenizer.json"
    tok_json.write_text(json.dumps(json.loads(tok_json.read_text()), indent=1, ensure_ascii=False) + "\n")
    return PreTrainedTokenizerFast.from_pretrained(str(with_files))


def encode_documents(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Each document is <|endoftext|> + the quote's tokens (the post-processor adds the first)."""
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]


# --------------------------------------------------------------------------
# Model and training
# --------------------------------------------------------------------------

def model_config() -> LlamaConfig:
    m = MODEL
    cfg = LlamaConfig(
        vocab_size=m["vocab"], hidden_size=m["hidden"], intermediate_size=m["ffn"], num_hidden_layers=m["layers"],
        num_attention_heads=m["heads"], num_key_value_heads=m["kv_heads"], head_dim=m["head_dim"],
        max_position_embeddings=m["max_pos"], initializer_range=0.02, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=True, attention_dropout=0.0,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


def register_arch():
    """Make export_fixtures' helpers (io_names, dummy_args, make_inputs, build_feed) know this shape."""
    m = MODEL
    ef.ARCHS[ARCH] = dict(cls=LlamaForCausalLM, config=model_config, layers=m["layers"], heads=m["heads"],
                          kv_heads=m["kv_heads"], head_dim=m["head_dim"], hidden=m["hidden"], vocab=m["vocab"])


def epoch_stream(docs: list[list[int]], epoch: int) -> np.ndarray:
    order = list(range(len(docs)))
    random.Random(SEED * 1000 + epoch).shuffle(order)
    return np.fromiter((t for i in order for t in docs[i]), dtype=np.int64)


class Batches:
    """Deterministic packed batches: each epoch shuffles the documents and cuts the stream into
    SEQ_LEN + 1 windows (one token overlap for the shifted labels), consumed BATCH at a time."""

    def __init__(self, docs: list[list[int]]):
        self.docs, self.epoch, self.windows, self.pos = docs, 0, None, 0
        self._refill()

    def _refill(self):
        stream = epoch_stream(self.docs, self.epoch)
        n = (len(stream) - 1) // SEQ_LEN
        self.windows = np.stack([stream[i * SEQ_LEN:i * SEQ_LEN + SEQ_LEN + 1] for i in range(n)])
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + BATCH > len(self.windows):
            self.epoch += 1
            self._refill()
        batch = self.windows[self.pos:self.pos + BATCH]
        self.pos += BATCH
        return torch.from_numpy(batch)


def lr_at(step: int) -> float:
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, STEPS - WARMUP)
    return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(model, docs: list[list[int]]) -> float:
    """Mean next-token loss over the validation documents, packed the same way (epoch 0 order)."""
    model.eval()
    stream = epoch_stream(docs, 0)
    total, count = 0.0, 0
    for start in range(0, len(stream) - 1, SEQ_LEN * BATCH):
        chunk = stream[start:start + SEQ_LEN * BATCH + 1]
        n = (len(chunk) - 1) // SEQ_LEN
        if n == 0:
            break
        x = torch.from_numpy(np.stack([chunk[i * SEQ_LEN:(i + 1) * SEQ_LEN + 1] for i in range(n)]))
        logits = model(input_ids=x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        total += float(loss)
        count += x[:, 1:].numel()
    model.train()
    return total / count


def train(train_docs, val_docs, log) -> tuple[LlamaForCausalLM, dict]:
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(model_config())
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters ({MODEL})")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=1e-8)
    batches = Batches(train_docs)
    train_tokens = sum(map(len, train_docs))
    log(f"training: {STEPS} steps x {BATCH} x {SEQ_LEN} tokens = {STEPS * BATCH * SEQ_LEN:,} tokens "
        f"({STEPS * BATCH * SEQ_LEN / train_tokens:.2f} epochs of {train_tokens:,})")
    model.train()
    t0 = time.monotonic()
    smoothed, history = None, []
    for step in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x = batches.next()
        logits = model(input_ids=x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        value = float(loss)
        smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
        if (step + 1) % LOG_EVERY == 0 or step == 0:
            log(f"step {step + 1:5d}/{STEPS}  loss {value:.3f}  (smoothed {smoothed:.3f})  lr {lr_at(step):.2e}  "
                f"epoch {batches.epoch}  {time.monotonic() - t0:7.1f} s")
        if (step + 1) % EVAL_EVERY == 0 or step + 1 == STEPS:
            val = evaluate(model, val_docs)
            history.append({"step": step + 1, "train_loss_smoothed": round(smoothed, 4), "val_loss": round(val, 4)})
            log(f"step {step + 1:5d}  val loss {val:.3f}")
    model.eval()
    final_train = evaluate(model, train_docs[: len(val_docs) * 4])
    stats = {
        "parameters": n_params,
        "steps": STEPS,
        "tokens_seen": STEPS * BATCH * SEQ_LEN,
        "train_tokens": train_tokens,
        "epochs": round(STEPS * BATCH * SEQ_LEN / train_tokens, 2),
        "final_train_loss": round(final_train, 4),
        "final_train_loss_on": f"the first {len(val_docs) * 4} training quotes, model in eval mode",
        "final_val_loss": history[-1]["val_loss"],
        "history": history,
        "train_seconds": round(time.monotonic() - t0, 1),
        "torch_threads": torch.get_num_threads(),
    }
    return model, stats


# --------------------------------------------------------------------------
# Samples and goldens
# --------------------------------------------------------------------------

@torch.no_grad()
def samples(model, hf_tok, log) -> list[dict]:
    ef.set_attn(model, "eager")
    out = []
    for i, prompt in enumerate(SAMPLE_PROMPTS):
        ids = torch.tensor([hf_tok(prompt).input_ids])
        common = dict(attention_mask=torch.ones_like(ids), max_new_tokens=48, eos_token_id=0, pad_token_id=0)
        g = model.generate(ids, do_sample=False, **common)
        torch.manual_seed(SEED + i)
        s = model.generate(ids, do_sample=True, temperature=0.8, top_p=0.95, top_k=0, **common)
        entry = {"prompt": prompt,
                 "greedy": hf_tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True),
                 "sampled (temperature 0.8, top_p 0.95)": hf_tok.decode(s[0, ids.shape[1]:], skip_special_tokens=True)}
        out.append(entry)
        log(f"--- {prompt!r}\n  greedy:  {prompt}{entry['greedy']!r}\n  sampled: {prompt}"
            f"{entry['sampled (temperature 0.8, top_p 0.95)']!r}")
    return out


@torch.no_grad()
def generate_goldens(model, hf_tok) -> dict:
    """models/fixtures/<arch>-past/golden/generate.json's format, plus the prompt and output texts."""
    ef.set_attn(model, "eager")
    eos = hf_tok.eos_token_id
    prompts = [hf_tok(p).input_ids for p in GOLDEN_PROMPTS]
    greedy_cases = []
    for i, (p, m) in enumerate(zip(prompts, GOLDEN_MAX_NEW)):
        g = eg.greedy(model, p, m, eos)
        greedy_cases.append({"prompt": i, "max_new_tokens": m, "generated_ids": g,
                             "finish_reason": "stop" if g and g[-1] == eos else "length",
                             "text": hf_tok.decode(g, skip_special_tokens=True)})
    beam_cases = []
    for (i, nb, lp, es, nrs, m) in GOLDEN_BEAM_CASES:
        beam_cases.append({"prompt": i, "num_beams": nb, "length_penalty": lp, "early_stopping": es,
                           "num_return_sequences": nrs, "max_new_tokens": m,
                           "results": eg.beam(model, prompts[i], nb, lp, es, nrs, m, eos)})
    vers = ef.versions()
    return {
        "generator": "scripts/models/train_default_model.py",
        "arch": "llama",
        "model": "models/default",
        "versions": {k: vers[k] for k in ("torch", "transformers", "tokenizers")},
        "eos_token_id": eos,
        "pad_token_id": hf_tok.pad_token_id,
        "prompt_texts": list(GOLDEN_PROMPTS),
        "prompts": prompts,
        "greedy": greedy_cases,
        "beam": beam_cases,
    }


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def export_and_check(model, out: Path, log) -> dict:
    """The llama-past fixture's export (export_fixtures.export_torchscript) and its onnxruntime checks."""
    path = out / "model.onnx"
    for stale in (path, out / "model.onnx.data"):
        stale.unlink(missing_ok=True)
    info = ef.export_torchscript(model, ARCH, "past", path)
    check = ef.onnx_check(path)
    m = onnx.load(str(path))
    log(f"exported {shown(path)}: {path.stat().st_size:,} bytes, {len(m.graph.node)} nodes, "
        f"{len(m.graph.initializer)} initializers, checker: {check}")

    # Goldens for `pagedc run-onnx` (prefill + decode through onnxruntime) and the error vs transformers.
    inp = ef.make_inputs(ARCH)
    ref = ef.transformers_reference(model, inp)
    sess = ef.ort_session(path)
    out_names = [o.name for o in sess.get_outputs()]
    feed = ef.build_feed(sess, ARCH, inp, "prefill")
    outs = dict(zip(out_names, sess.run(out_names, feed)))
    feed2 = ef.build_feed(sess, ARCH, inp, "decode", outs)
    outs2 = dict(zip(out_names, sess.run(out_names, feed2)))
    golden = out / "golden"
    golden.mkdir(parents=True, exist_ok=True)
    ef.save_npz(golden / "prefill_inputs.npz", feed)
    ef.save_npz(golden / "prefill_outputs.npz", outs)
    ef.save_npz(golden / "decode_inputs.npz", feed2)
    ef.save_npz(golden / "decode_outputs.npz", outs2)
    errors = {
        "prefill_rel_err": ef.rel_err(outs["logits"], ref["logits"], inp["mask"])[2],
        "decode_rel_err": ef.rel_err(outs2["logits"], ref["decode_logits"], np.ones((ef.PREFILL_BATCH, 1)))[2],
    }
    errors.update(ef.chunk_check(sess, ARCH, inp, ref, out_names))
    worst = max(errors[k] for k in ("prefill_rel_err", "decode_rel_err", "chunk_rel_err"))
    log(f"onnxruntime vs transformers: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items() if "rel" in k))
    if not worst < ef.ERR_TOL:
        raise SystemExit(f"onnxruntime differs from transformers: relative error {worst:.3e} >= {ef.ERR_TOL}")
    return {"bytes": path.stat().st_size, "nodes": len(m.graph.node), "initializers": len(m.graph.initializer),
            "checker": check, "ops": sorted(f"{d}::{o}" for d, o in ef.collect_ops(m)),
            "inputs": ef.describe_io(m.graph.input), "outputs": ef.describe_io(m.graph.output),
            "errors_vs_transformers": {k: float(f"{v:.3e}") for k, v in errors.items()}, **info}


@torch.no_grad()
def ort_greedy(path: Path, prompt: list[int], max_new: int, eos: int) -> list[int]:
    """Greedy decoding through the exported graph with onnxruntime (prefill, then one token per step)."""
    sess = ef.ort_session(path)
    out_names = [o.name for o in sess.get_outputs()]
    spec = ef.ARCHS[ARCH]
    past = {i.name: np.zeros((1, spec["kv_heads"], 0, spec["head_dim"]), dtype=np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values.")}
    ids, generated, total = np.array([prompt], dtype=np.int64), [], len(prompt)
    while len(generated) < max_new:
        n = ids.shape[1]
        feed = {"input_ids": ids, "attention_mask": np.ones((1, total), dtype=np.int64),
                "position_ids": np.arange(total - n, total, dtype=np.int64)[None], **past}
        o = dict(zip(out_names, sess.run(out_names, feed)))
        token = int(o["logits"][0, -1].argmax())
        generated.append(token)
        if token == eos:
            break
        past = {k: o[k.replace("past_key_values.", "present.")] for k in past}
        ids, total = np.array([[token]], dtype=np.int64), total + 1
    return generated


# --------------------------------------------------------------------------

def main():
    global STEPS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "models" / "default")
    ap.add_argument("--work", type=Path, default=REPO / "build-default-model",
                    help="where the trained transformers checkpoint goes (not committed)")
    ap.add_argument("--export-only", action="store_true", help="skip training: export the checkpoint in --work")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training (default 2)")
    ap.add_argument("--steps", type=int, default=STEPS, help=f"training steps (default {STEPS}; fewer only to try the script)")
    args = ap.parse_args()
    STEPS = args.steps
    t_start = time.monotonic()
    torch.set_num_threads(args.threads)
    register_arch()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    log_lines = []

    def log(msg: str):
        print(msg, flush=True)
        log_lines.append(msg)

    quotes, per_file = read_fortunes()
    train_texts, val_texts = split_train_val(quotes)
    pkgs = package_versions()
    log(f"text: {len(quotes):,} quotations ({sum(map(len, quotes)):,} characters) from {len(per_file)} files of "
        f"{FORTUNES_DIR} ({', '.join(f'{k} {v}' for k, v in pkgs.items())}); {len(train_texts):,} train, "
        f"{len(val_texts):,} validation")

    tok = train_tokenizer(train_texts)
    hf_tok = save_tokenizer(tok, args.out)
    train_docs, val_docs = encode_documents(tok, train_texts), encode_documents(tok, val_texts)
    log(f"tokenizer: byte-level BPE, {tok.get_vocab_size()} tokens; {sum(map(len, train_docs)):,} train tokens, "
        f"{sum(map(len, val_docs)):,} validation tokens ({sum(map(len, train_texts)) / sum(map(len, train_docs)):.2f} "
        f"characters per token)")
    assert hf_tok("The meaning of life").input_ids == tok.encode("The meaning of life").ids
    assert hf_tok.decode(hf_tok("Hello, world!\n\t-- Anon").input_ids, skip_special_tokens=True) == "Hello, world!\n\t-- Anon"

    stats_path = args.work / "train_stats.json"
    if args.export_only:
        model = LlamaForCausalLM.from_pretrained(str(args.work), attn_implementation="eager").eval()
        stats = json.loads(stats_path.read_text())
        log(f"loaded {args.work} (trained earlier: final val loss {stats['final_val_loss']})")
    else:
        model, stats = train(train_docs, val_docs, log)
        model.save_pretrained(str(args.work))
        stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    # Export and generation run single-threaded, as the fixtures do (reproducible float sums).
    torch.set_num_threads(1)

    model.generation_config = GenerationConfig(bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
                                               pad_token_id=hf_tok.pad_token_id)
    model.config.save_pretrained(str(args.out))
    model.generation_config.save_pretrained(str(args.out))
    chat = hf_tok.apply_chat_template([{"role": "user", "content": "Tell me a joke."}], add_generation_prompt=True,
                                      tokenize=False)
    if chat != f"{EOT}user: Tell me a joke.\nassistant:":
        raise SystemExit(f"the chat template renders {chat!r}")
    log(f"chat template: {chat!r}")

    sample_list = samples(model, hf_tok, log)
    export = export_and_check(model, args.out, log)
    gen = generate_goldens(model, hf_tok)
    (args.out / "golden" / "generate.json").write_text(ef.dumps_compact(gen))
    for case in gen["greedy"]:
        prompt = gen["prompts"][case["prompt"]]
        got = ort_greedy(args.out / "model.onnx", prompt, case["max_new_tokens"], gen["eos_token_id"])
        if got != case["generated_ids"]:
            raise SystemExit(f"onnxruntime greedy decoding differs from transformers for {GOLDEN_PROMPTS[case['prompt']]!r}: "
                             f"{got} vs {case['generated_ids']}")
        log(f"golden {GOLDEN_PROMPTS[case['prompt']]!r} -> {case['text']!r} ({case['finish_reason']}; "
            f"onnxruntime greedy identical)")

    manifest = {
        "generator": "scripts/models/train_default_model.py",
        "source_text": {"directory": str(FORTUNES_DIR), "debian_packages": pkgs, "files": per_file,
                        "excluded_files": sorted(EXCLUDED_FILES), "quotations": len(quotes),
                        "train_quotations": len(train_texts), "validation_quotations": len(val_texts)},
        "tokenizer": {"kind": "byte-level BPE (ByteLevel pre-tokenizer with the GPT-2 regex, ByteLevel decoder)",
                      "vocab_size": VOCAB, "special_tokens": {EOT: 0}, "post_processor": f"{EOT} $A"},
        "model": {"class": "LlamaForCausalLM", **MODEL, "tie_word_embeddings": True, "rope_theta": 10000.0,
                  "rms_norm_eps": 1e-5},
        "training": {"seed": SEED, "seq_len": SEQ_LEN, "batch": BATCH, "steps": STEPS, "warmup": WARMUP, "lr": LR,
                     "min_lr_ratio": MIN_LR_RATIO, "weight_decay": WEIGHT_DECAY, "betas": list(BETAS),
                     "grad_clip": GRAD_CLIP, **{k: v for k, v in stats.items()}},
        "onnx": export,
        "samples": sample_list,
        "versions": ef.versions(),
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    files = sorted(p for p in args.out.rglob("*") if p.is_file())
    for p in files:
        log(f"  {shown(p)}: {p.stat().st_size:,} bytes")
    log(f"done in {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
