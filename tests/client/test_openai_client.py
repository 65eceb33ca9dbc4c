#!/usr/bin/env python3
"""The official `openai` Python client (pinned in requirements.txt), unmodified, against `pagedc serve`.

    .venv-client/bin/python tests/client/test_openai_client.py --pagedc build/tools/pagedc [--artifact X.pgc] [-v] [-k PATTERN]

Starts `pagedc serve` on a free port (--port 0, --threads 1), waits for /health and drives it with
openai.OpenAI and openai.AsyncOpenAI: completions and chat completions, plain and streamed (SSE),
n/seed, logprobs, stream_options.include_usage, stop strings, max_tokens, models, the mapping of
error statuses onto the client's exception classes, API keys, 16 concurrent streams, and finally
a graceful SIGTERM. Without --artifact the server runs the bundled default model (models/default/),
which has a tokenizer and a chat template, and every test must run. With an artifact that has no
tokenizer (token-id prompts only), the tests that need text or chat are skipped.

The client is strict here: `_strict_response_validation=True` validates every response (streamed
chat chunks included) against the client's pydantic models, so a field of the wrong type or a
missing required field fails the test instead of being let through. Streamed completions are read
with the default, lenient client: its CompletionChoice types finish_reason as never null, which
OpenAI's own API sends on every chunk but the last, as this server does.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

try:
    import openai
    from openai.types import Completion, Model
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
except ImportError as e:  # a failure, never a skip: scripts/setup.sh always creates the venv
    sys.exit(f"test_openai_client: cannot import the openai client ({e}); run scripts/setup.sh, which creates .venv-client/ "
             "from tests/client/requirements.txt, and run this file with .venv-client/bin/python")

OPTIONS = argparse.Namespace(pagedc=None, artifact=None)
STARTUP_TIMEOUT_S = 180.0  # the default model is compiled when the server starts
REQUEST_TIMEOUT_S = 60.0

# Everything here talks to 127.0.0.1 only: a proxy from the environment must not get in the way.
for _var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


class Server:
    """`pagedc serve` as a subprocess, its output collected by a thread."""

    PORT_LINE = re.compile(r"pagedc serve: model '([^']*)' .* on http://([0-9.]+):(\d+)")

    def __init__(self, extra_args=()):
        self.workdir = tempfile.mkdtemp(prefix="pagedc-client-test-")
        cmd = [OPTIONS.pagedc, "serve"]
        if OPTIONS.artifact:
            cmd.append(OPTIONS.artifact)
        # A small KV pool: the default (4 GiB at most) takes seconds to allocate and is not needed.
        cmd += ["--port", "0", "--threads", "1", "--kv-cache-memory", "256MiB", *extra_args]
        env = dict(os.environ)
        env.pop("PAGEDC_API_KEY", None)
        env["OMP_NUM_THREADS"] = "1"
        self.cmd = cmd
        self.lines = []
        self.model = None
        self.port = None
        self._ready = threading.Event()
        # A fresh working directory: a stale default.pgc in the caller's directory is not picked up,
        # the bundled model is compiled from models/default/ as it is now.
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S) or self.port is None:
            rc = self.proc.poll()
            self.kill()
            why = f"exited with status {rc}" if rc is not None else f"printed no port within {STARTUP_TIMEOUT_S:.0f} s"
            raise RuntimeError(f"{' '.join(cmd)} {why}:\n{self.output()}")
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError(f"{self.base}/health never answered 200:\n{self.output()}")
            time.sleep(0.1)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            m = self.PORT_LINE.search(line)
            if m and self.port is None:
                self.model, self.port = m.group(1), int(m.group(3))
                self._ready.set()
        self._ready.set()

    def output(self):
        return "".join(self.lines[-200:])

    def client(self, api_key="unused", strict=True, **kwargs):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=api_key, max_retries=0, timeout=REQUEST_TIMEOUT_S,
                             _strict_response_validation=strict, **kwargs)

    def async_client(self, api_key="unused", strict=False, **kwargs):
        return openai.AsyncOpenAI(base_url=self.base + "/v1", api_key=api_key, max_retries=0, timeout=REQUEST_TIMEOUT_S,
                                  _strict_response_validation=strict, **kwargs)

    def post_json(self, path, body):
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        self.proc.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


SERVER = None
MODEL = None  # the served model's name
HAS_TOKENIZER = False
HAS_CHAT = False
PROMPT = None  # text with a tokenizer, token ids without
PROMPTS = []  # distinct prompts for the concurrency test
MESSAGES = [{"role": "user", "content": "Tell me something wise."}]


def setUpModule():
    global SERVER, MODEL, HAS_TOKENIZER, HAS_CHAT, PROMPT, PROMPTS
    SERVER = Server(["--shutdown-grace", "10"])
    MODEL = SERVER.model
    status, _ = SERVER.post_json("/tokenize", {"prompt": "hello"})
    HAS_TOKENIZER = status == 200
    status, _ = SERVER.post_json("/tokenize", {"messages": MESSAGES})
    HAS_CHAT = status == 200
    if not OPTIONS.artifact and not (HAS_TOKENIZER and HAS_CHAT):
        raise RuntimeError("the bundled default model must have a tokenizer and a chat template (models/default/)")
    if HAS_TOKENIZER:
        PROMPT = "The secret of life is"
        PROMPTS = ["The secret of life is", "A fool", "You will", "Never", "Love is", "The best way to", "If you", "Time"]
    else:
        PROMPT = [1, 2, 3, 4, 5]
        PROMPTS = [[1 + i, 2 + i, 3 + i] for i in range(8)]


def tearDownModule():
    if SERVER is not None:
        SERVER.kill()  # if still running; joins the reader, removes the working directory


def needs_text(test):
    def wrapper(self, *args, **kwargs):
        if not HAS_TOKENIZER:
            self.skipTest(f"{OPTIONS.artifact} has no tokenizer.json")
        return test(self, *args, **kwargs)
    wrapper.__name__ = test.__name__
    return wrapper


def needs_chat(cls):
    original = cls.setUp

    def setUp(self):
        if not HAS_CHAT:
            self.skipTest(f"{OPTIONS.artifact} has no tokenizer.json or chat template")
        original(self)
    cls.setUp = setUp
    return cls


class ClientTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.client = SERVER.client()
        self.lenient = SERVER.client(strict=False)  # for streamed completions (see the top)

    def tearDown(self):
        self.client.close()
        self.lenient.close()

    def assertUsage(self, usage, completion_tokens=None):
        self.assertIsNotNone(usage)
        self.assertGreater(usage.prompt_tokens, 0)
        self.assertEqual(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens)
        if completion_tokens is not None:
            self.assertEqual(usage.completion_tokens, completion_tokens)

    def assertGreedyLogprob(self, sampled, alternatives):
        """With temperature 0 the sampled token is the most likely one."""
        self.assertLessEqual(sampled, 0.0)
        for lp in alternatives:
            self.assertLessEqual(lp, sampled + 1e-4)


def pick_stop(text):
    """A stop string from the middle of `text` whose first occurrence leaves some text before it."""
    for length in (4, 3, 2, 1):
        for start in range(len(text) // 2, len(text) - length + 1):
            stop = text[start:start + length]
            if stop.strip() and text.find(stop) > 0:
                return stop, text[:text.find(stop)]
    assert text, "the model generated nothing to stop at"
    return text[:1], ""  # a text of one repeated character: stop at once


def collect_completion_stream(stream):
    """Concatenated text and finish reason per choice index, the usage chunk, the chunk count."""
    texts, finish, usage, chunks, logprob_tokens = {}, {}, None, 0, {}
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            assert usage is None, "two chunks carry usage"
            usage = chunk.usage
            assert chunk.choices == [], f"the usage chunk has choices: {chunk}"
            continue
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
            if c.logprobs is not None:
                logprob_tokens.setdefault(c.index, []).extend(c.logprobs.tokens)
            if c.finish_reason is not None:
                assert c.index not in finish, f"choice {c.index} finished twice"
                finish[c.index] = c.finish_reason
    return texts, finish, usage, chunks, logprob_tokens


def collect_chat_stream(stream, test):
    texts, roles, finish, usage, logprob_tokens = {}, {}, {}, None, {}
    for chunk in stream:
        test.assertIsInstance(chunk, ChatCompletionChunk)
        test.assertEqual(chunk.object, "chat.completion.chunk")
        if chunk.usage is not None:
            test.assertIsNone(usage, "two chunks carry usage")
            test.assertEqual(chunk.choices, [])
            usage = chunk.usage
            continue
        for c in chunk.choices:
            if c.index not in texts:
                # The first delta of every choice carries the role.
                test.assertEqual(c.delta.role, "assistant", f"first delta of choice {c.index}: {c}")
                roles[c.index] = c.delta.role
                texts[c.index] = ""
            texts[c.index] += c.delta.content or ""
            if c.logprobs is not None and c.logprobs.content:
                logprob_tokens.setdefault(c.index, []).extend(t.token for t in c.logprobs.content)
            if c.finish_reason is not None:
                test.assertNotIn(c.index, finish, f"choice {c.index} finished twice")
                finish[c.index] = c.finish_reason
    return texts, finish, usage, logprob_tokens


class CompletionsTest(ClientTest):
    def create(self, **kwargs):
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("prompt", PROMPT)
        return (self.lenient if kwargs.get("stream") else self.client).completions.create(**kwargs)

    def test_non_streaming(self):
        r = self.create(max_tokens=12, temperature=0)
        self.assertIsInstance(r, Completion)
        self.assertEqual(r.object, "text_completion")
        self.assertTrue(r.id.startswith("cmpl-"), r.id)
        self.assertEqual(r.model, MODEL)
        self.assertEqual(len(r.choices), 1)
        self.assertEqual(r.choices[0].index, 0)
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertUsage(r.usage)
        self.assertLessEqual(r.usage.completion_tokens, 12)
        self.assertGreater(r.usage.completion_tokens, 0)
        if HAS_TOKENIZER:
            self.assertNotEqual(r.choices[0].text, "")

    def test_lenient_client(self):
        """The client as users construct it (no strict validation), default timeout and retries."""
        with openai.OpenAI(base_url=SERVER.base + "/v1", api_key="unused") as client:
            r = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4, temperature=0)
        self.assertEqual(len(r.choices), 1)
        self.assertUsage(r.usage)

    def test_streaming_equals_non_streaming(self):
        full = self.create(max_tokens=16, temperature=0, logprobs=0)
        stream = self.create(max_tokens=16, temperature=0, logprobs=0, stream=True)
        texts, finish, usage, chunks, tokens = collect_completion_stream(stream)
        self.assertIsNone(usage, "usage streamed without stream_options.include_usage")
        self.assertEqual(texts, {0: full.choices[0].text})
        self.assertEqual(finish, {0: full.choices[0].finish_reason})
        self.assertEqual(tokens, {0: full.choices[0].logprobs.tokens})
        self.assertGreater(chunks, 1)

    def test_stream_include_usage(self):
        full = self.create(max_tokens=10, temperature=0)
        texts, finish, usage, _, _ = collect_completion_stream(
            self.create(max_tokens=10, temperature=0, stream=True, stream_options={"include_usage": True}))
        self.assertEqual(texts[0], full.choices[0].text)
        self.assertIsNotNone(usage, "no final usage chunk with stream_options.include_usage")
        self.assertEqual(usage.model_dump(exclude_none=True), full.usage.model_dump(exclude_none=True))

    def test_max_tokens_gives_length(self):
        r = self.create(max_tokens=3, temperature=0, extra_body={"ignore_eos": True})
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertUsage(r.usage, completion_tokens=3)
        texts, finish, usage, _, _ = collect_completion_stream(
            self.create(max_tokens=3, temperature=0, extra_body={"ignore_eos": True}, stream=True, stream_options={"include_usage": True}))
        self.assertEqual(finish, {0: "length"})
        self.assertEqual(usage.completion_tokens, 3)
        self.assertEqual(texts[0], r.choices[0].text)

    @needs_text
    def test_stop_string(self):
        full = self.create(max_tokens=24, temperature=0, extra_body={"ignore_eos": True}).choices[0].text
        stop, expected = pick_stop(full)
        r = self.create(max_tokens=24, temperature=0, extra_body={"ignore_eos": True}, stop=[stop, "\u2603never"])
        self.assertEqual(r.choices[0].text, expected, f"stop={stop!r}, unstopped text {full!r}")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual((r.choices[0].model_extra or {}).get("stop_reason"), stop)
        texts, finish, _, _, _ = collect_completion_stream(
            self.create(max_tokens=24, temperature=0, extra_body={"ignore_eos": True}, stop=stop, stream=True))
        self.assertEqual(texts, {0: expected})
        self.assertEqual(finish, {0: "stop"})

    def test_logprobs(self):
        r = self.create(max_tokens=6, temperature=0, logprobs=2, extra_body={"ignore_eos": True})
        lp = r.choices[0].logprobs
        self.assertIsNotNone(lp)
        self.assertEqual(len(lp.tokens), 6)
        self.assertEqual(len(lp.token_logprobs), 6)
        self.assertEqual(len(lp.top_logprobs), 6)
        self.assertEqual(len(lp.text_offset), 6)
        self.assertEqual(lp.text_offset[0], 0)
        self.assertEqual(lp.text_offset, sorted(lp.text_offset))
        for token, sampled, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            self.assertIn(token, top)
            self.assertGreaterEqual(len(top), 1)
            self.assertLessEqual(len(top), 3)  # the sampled token and the top 2
            self.assertAlmostEqual(top[token], sampled, places=5)
            self.assertGreedyLogprob(sampled, top.values())
        if HAS_TOKENIZER and r.choices[0].text.isascii():  # a character split across tokens decodes per token as U+FFFD
            self.assertEqual("".join(lp.tokens), r.choices[0].text)
        # Streamed logprobs add up to the same tokens.
        _, _, _, _, tokens = collect_completion_stream(
            self.create(max_tokens=6, temperature=0, logprobs=2, extra_body={"ignore_eos": True}, stream=True))
        self.assertEqual(tokens, {0: lp.tokens})

    def test_n_with_seed(self):
        kwargs = dict(max_tokens=8, n=2, seed=1234, temperature=1.0, extra_body={"ignore_eos": True})
        r = self.create(**kwargs)
        self.assertEqual(sorted(c.index for c in r.choices), [0, 1])
        self.assertUsage(r.usage, completion_tokens=16)
        again = self.create(**kwargs)
        self.assertEqual([c.text for c in again.choices], [c.text for c in r.choices], "the same seed gave different samples")
        texts, finish, usage, _, _ = collect_completion_stream(self.create(stream=True, stream_options={"include_usage": True}, **kwargs))
        self.assertEqual(texts, {c.index: c.text for c in r.choices})
        self.assertEqual(finish, {0: "length", 1: "length"})
        self.assertEqual(usage.completion_tokens, 16)

    def test_several_prompts(self):
        prompts = PROMPTS[:2]
        r = self.create(prompt=prompts, max_tokens=5, temperature=0)
        self.assertEqual(sorted(c.index for c in r.choices), [0, 1])
        for i, prompt in enumerate(prompts):
            single = self.create(prompt=prompt, max_tokens=5, temperature=0)
            self.assertEqual(r.choices[i].text, single.choices[0].text)

    def test_with_raw_response(self):
        raw = self.client.completions.with_raw_response.create(model=MODEL, prompt=PROMPT, max_tokens=4, temperature=0)
        self.assertEqual(raw.status_code, 200)
        self.assertTrue(raw.headers["content-type"].startswith("application/json"), raw.headers)
        body = json.loads(raw.text)
        Completion.model_validate(body)  # the raw JSON itself fits the client's model
        self.assertEqual(raw.parse().id, body["id"])
        with self.lenient.completions.with_streaming_response.create(model=MODEL, prompt=PROMPT, max_tokens=4, temperature=0,
                                                                    stream=True) as response:
            self.assertEqual(response.status_code, 200)
            self.assertTrue(response.headers["content-type"].startswith("text/event-stream"), response.headers)
            lines = [line for line in response.iter_lines() if line]
        self.assertEqual(lines[-1], "data: [DONE]")


@needs_chat
class ChatTest(ClientTest):
    def create(self, **kwargs):
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("messages", MESSAGES)
        return self.client.chat.completions.create(**kwargs)

    def test_non_streaming(self):
        r = self.create(max_completion_tokens=16, temperature=0)
        self.assertIsInstance(r, ChatCompletion)
        self.assertEqual(r.object, "chat.completion")
        self.assertTrue(r.id.startswith("chatcmpl-"), r.id)
        self.assertEqual(r.model, MODEL)
        self.assertEqual(len(r.choices), 1)
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertIsInstance(r.choices[0].message.content, str)
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertUsage(r.usage)
        self.assertLessEqual(r.usage.completion_tokens, 16)

    def test_streaming_equals_non_streaming(self):
        full = self.create(max_tokens=16, temperature=0)
        texts, finish, usage, _ = collect_chat_stream(
            self.create(max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}), self)
        self.assertEqual(texts, {0: full.choices[0].message.content})
        self.assertEqual(finish, {0: full.choices[0].finish_reason})
        self.assertIsNotNone(usage, "no final usage chunk with stream_options.include_usage")
        self.assertEqual(usage.model_dump(exclude_none=True), full.usage.model_dump(exclude_none=True))
        texts, _, usage, _ = collect_chat_stream(self.create(max_tokens=16, temperature=0, stream=True), self)
        self.assertIsNone(usage, "usage streamed without stream_options.include_usage")
        self.assertEqual(texts, {0: full.choices[0].message.content})

    def test_max_completion_tokens_gives_length(self):
        r = self.create(max_completion_tokens=3, temperature=0, extra_body={"ignore_eos": True})
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertUsage(r.usage, completion_tokens=3)
        r = self.create(max_tokens=2, temperature=0, extra_body={"ignore_eos": True})
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertUsage(r.usage, completion_tokens=2)

    def test_stop_string(self):
        full = self.create(max_tokens=24, temperature=0, extra_body={"ignore_eos": True}).choices[0].message.content
        stop, expected = pick_stop(full)
        r = self.create(max_tokens=24, temperature=0, extra_body={"ignore_eos": True}, stop=stop)
        self.assertEqual(r.choices[0].message.content, expected, f"stop={stop!r}, unstopped text {full!r}")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        texts, finish, _, _ = collect_chat_stream(
            self.create(max_tokens=24, temperature=0, extra_body={"ignore_eos": True}, stop=[stop], stream=True), self)
        self.assertEqual(texts, {0: expected})
        self.assertEqual(finish, {0: "stop"})

    def test_logprobs(self):
        r = self.create(max_tokens=6, temperature=0, logprobs=True, top_logprobs=2, extra_body={"ignore_eos": True})
        content = r.choices[0].logprobs.content
        self.assertEqual(len(content), 6)
        for t in content:
            self.assertEqual(t.bytes, list(t.token.encode("utf-8")))
            self.assertEqual(len(t.top_logprobs), 2)
            for alt in t.top_logprobs:
                self.assertEqual(alt.bytes, list(alt.token.encode("utf-8")))
            self.assertGreedyLogprob(t.logprob, [alt.logprob for alt in t.top_logprobs])
        if r.choices[0].message.content.isascii():
            self.assertEqual("".join(t.token for t in content), r.choices[0].message.content)
        _, _, _, tokens = collect_chat_stream(
            self.create(max_tokens=6, temperature=0, logprobs=True, top_logprobs=2, extra_body={"ignore_eos": True}, stream=True), self)
        self.assertEqual(tokens, {0: [t.token for t in content]})
        # logprobs without top_logprobs: the sampled tokens only.
        r = self.create(max_tokens=3, temperature=0, logprobs=True)
        for t in r.choices[0].logprobs.content:
            self.assertEqual(t.top_logprobs, [])

    def test_n_with_seed(self):
        kwargs = dict(max_tokens=8, n=2, seed=99, temperature=1.0, extra_body={"ignore_eos": True})
        r = self.create(**kwargs)
        self.assertEqual(sorted(c.index for c in r.choices), [0, 1])
        self.assertUsage(r.usage, completion_tokens=16)
        again = self.create(**kwargs)
        self.assertEqual([c.message.content for c in again.choices], [c.message.content for c in r.choices])
        texts, finish, _, _ = collect_chat_stream(self.create(stream=True, **kwargs), self)
        self.assertEqual(texts, {c.index: c.message.content for c in r.choices})
        self.assertEqual(finish, {0: "length", 1: "length"})

    def test_content_parts(self):
        """The client's typed form of content, a list of text parts, reads as the plain string."""
        plain = self.create(max_tokens=8, temperature=0)
        parts = self.create(max_tokens=8, temperature=0,
                            messages=[{"role": "user", "content": [{"type": "text", "text": MESSAGES[0]["content"]}]}])
        self.assertEqual(parts.choices[0].message.content, plain.choices[0].message.content)
        self.assertEqual(parts.usage.prompt_tokens, plain.usage.prompt_tokens)

    def test_with_raw_response(self):
        raw = self.client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=4, temperature=0)
        self.assertEqual(raw.status_code, 200)
        ChatCompletion.model_validate(json.loads(raw.text))
        self.assertEqual(raw.parse().choices[0].message.role, "assistant")


class ModelsTest(ClientTest):
    def test_list(self):
        models = self.client.models.list()
        data = list(models)
        self.assertEqual(len(data), 1)
        self.assertIsInstance(data[0], Model)
        self.assertEqual(data[0].id, MODEL)
        self.assertEqual(data[0].object, "model")
        self.assertIsInstance(data[0].created, int)
        self.assertTrue(data[0].owned_by)
        if not OPTIONS.artifact:
            self.assertEqual(MODEL, "default")

    def test_retrieve(self):
        m = self.client.models.retrieve(MODEL)
        self.assertEqual(m.id, MODEL)
        self.assertEqual(m.object, "model")

    def test_retrieve_unknown(self):
        with self.assertRaises(openai.NotFoundError) as cm:
            self.client.models.retrieve("no-such-model")
        self.assertEqual(cm.exception.status_code, 404)
        self.assertIn("no-such-model", cm.exception.message)


class ErrorsTest(ClientTest):
    def assertBadRequest(self, param, call):
        with self.assertRaises(openai.BadRequestError) as cm:
            call()
        e = cm.exception
        self.assertEqual(e.status_code, 400)
        self.assertEqual(e.param, param, e.body)
        self.assertEqual(e.type, "invalid_request_error", e.body)
        self.assertIn(param, e.message)
        return e

    def test_bad_temperature(self):
        self.assertBadRequest("temperature", lambda: self.client.completions.create(model=MODEL, prompt=PROMPT, temperature=-1))
        if HAS_CHAT:
            self.assertBadRequest("temperature",
                                  lambda: self.client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=-0.5))

    def test_bad_top_p(self):
        self.assertBadRequest("top_p", lambda: self.client.completions.create(model=MODEL, prompt=PROMPT, top_p=1.5))

    def test_bad_max_tokens(self):
        self.assertBadRequest("max_tokens", lambda: self.client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=10**7))
        self.assertBadRequest("max_tokens", lambda: self.client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=0))

    def test_bad_n(self):
        self.assertBadRequest("n", lambda: self.client.completions.create(model=MODEL, prompt=PROMPT, n=1000, temperature=1))

    def test_unknown_field(self):
        self.assertBadRequest("no_such_field",
                              lambda: self.client.completions.create(model=MODEL, prompt=PROMPT, extra_body={"no_such_field": 1}))

    def test_stream_error_before_streaming(self):
        """A bad streamed request fails with the status, not with a broken stream."""
        with self.assertRaises(openai.BadRequestError):
            for _ in self.lenient.completions.create(model=MODEL, prompt=PROMPT, temperature=-1, stream=True):
                pass

    @needs_text
    def test_bad_messages(self):
        if not HAS_CHAT:
            self.skipTest("no chat")
        self.assertBadRequest("messages", lambda: self.client.chat.completions.create(model=MODEL, messages=[]))

    def test_unknown_model(self):
        with self.assertRaises(openai.NotFoundError) as cm:
            self.client.completions.create(model="no-such-model", prompt=PROMPT, max_tokens=2)
        self.assertEqual(cm.exception.status_code, 404)
        self.assertEqual(cm.exception.param, "model")
        self.assertIn("no-such-model", cm.exception.message)
        if HAS_CHAT:
            with self.assertRaises(openai.NotFoundError):
                self.client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=2)

    def test_error_body(self):
        """The raw body is OpenAI's {"error": {message, type, param, code}}."""
        status, body = SERVER.post_json("/v1/completions", {"model": MODEL, "prompt": PROMPT, "temperature": -1})
        self.assertEqual(status, 400)
        self.assertEqual(set(body), {"error"})
        self.assertEqual(set(body["error"]), {"message", "type", "param", "code"})
        self.assertEqual(body["error"]["param"], "temperature")


class ConcurrencyTest(ClientTest):
    def test_16_concurrent_streams(self):
        chat = HAS_CHAT
        requests = []  # (api, prompt)
        for i in range(16):
            prompt = PROMPTS[i % len(PROMPTS)]
            use_chat = chat and i % 2 == 1
            requests.append(("chat", [{"role": "user", "content": prompt}]) if use_chat else ("completions", prompt))
        kwargs = dict(max_tokens=16, temperature=0)

        expected = {}
        for api, prompt in requests:
            key = (api, json.dumps(prompt))
            if key in expected:
                continue
            if api == "chat":
                expected[key] = self.client.chat.completions.create(model=MODEL, messages=prompt, **kwargs).choices[0].message.content
            else:
                expected[key] = self.client.completions.create(model=MODEL, prompt=prompt, **kwargs).choices[0].text

        async def one(client, api, prompt):
            text, finished = "", None
            if api == "chat":
                stream = await client.chat.completions.create(model=MODEL, messages=prompt, stream=True, **kwargs)
                async for chunk in stream:
                    for c in chunk.choices:
                        text += c.delta.content or ""
                        finished = c.finish_reason or finished
            else:
                stream = await client.completions.create(model=MODEL, prompt=prompt, stream=True, **kwargs)
                async for chunk in stream:
                    for c in chunk.choices:
                        text += c.text
                        finished = c.finish_reason or finished
            return text, finished

        async def all_of_them():
            async with SERVER.async_client() as client:
                return await asyncio.wait_for(asyncio.gather(*(one(client, api, p) for api, p in requests)), REQUEST_TIMEOUT_S)

        results = asyncio.run(all_of_them())
        self.assertEqual(len(results), 16)
        for (api, prompt), (text, finished) in zip(requests, results):
            self.assertIsNotNone(finished, f"{api} {prompt!r} never finished")
            self.assertEqual(text, expected[(api, json.dumps(prompt))], f"{api} {prompt!r}")


class DisconnectTest(ClientTest):
    def test_closed_stream_is_aborted(self):
        """A client that closes a stream frees the engine: nothing keeps running for it."""
        stream = self.lenient.completions.create(model=MODEL, prompt=PROMPT, max_tokens=200, temperature=0, stream=True,
                                                extra_body={"ignore_eos": True})
        chunks = iter(stream)
        next(chunks)
        next(chunks)
        stream.close()
        deadline = time.monotonic() + 5
        while True:
            with urllib.request.urlopen(SERVER.base + "/metrics", timeout=5) as r:
                metrics = r.read().decode()
            running = re.search(r"^pagedc:num_requests_running (\S+)$", metrics, re.M)
            self.assertIsNotNone(running, "no pagedc:num_requests_running in /metrics")
            if float(running.group(1)) == 0:
                break
            self.assertLess(time.monotonic(), deadline, "the closed stream's request still runs after 5 s")
            time.sleep(0.05)


class AuthTest(unittest.TestCase):
    KEY = "sk-pagedc-test-key"

    @classmethod
    def setUpClass(cls):
        cls.server = Server(["--api-key", cls.KEY, "--disable-log-requests"])

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()

    def test_missing_key(self):
        with self.server.client(api_key="unused") as client:
            with self.assertRaises(openai.AuthenticationError) as cm:
                client.models.list(extra_headers={"Authorization": openai.omit})
        self.assertEqual(cm.exception.status_code, 401)
        self.assertIsNone(cm.exception.request.headers.get("authorization"))

    def test_wrong_key(self):
        with self.server.client(api_key="sk-wrong") as client:
            with self.assertRaises(openai.AuthenticationError) as cm:
                client.completions.create(model=self.server.model, prompt=PROMPT, max_tokens=2)
            self.assertEqual(cm.exception.status_code, 401)
            with self.assertRaises(openai.AuthenticationError):
                client.models.retrieve(self.server.model)

    def test_rejected_post_leaves_connection_usable(self):
        """A 401 for a POST whose body arrives after its headers (as httpx sends it) must not leave
        the body to be read as the next request on the kept-alive connection."""
        body = json.dumps({"model": self.server.model, "prompt": PROMPT, "max_tokens": 2}).encode()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-wrong\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            time.sleep(0.1)
            s.sendall(body)
            reader = s.makefile("rb")
            statuses = []
            for request in (b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + self.KEY.encode() + b"\r\n\r\n", None):
                status_line = reader.readline()
                if not status_line:
                    break  # the server closed the connection: as good as reading the body
                statuses.append(int(status_line.split()[1]))
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                reader.read(length)
                if request is None:
                    break
                try:
                    s.sendall(request)
                except OSError:
                    break
        self.assertEqual(statuses[0], 401)
        if len(statuses) > 1:
            self.assertEqual(statuses[1], 200, "the next request on the connection after a 401 POST failed")

    def test_right_key(self):
        with self.server.client(api_key=self.KEY) as client:
            self.assertEqual([m.id for m in client.models.list()], [self.server.model])
            r = client.completions.create(model=self.server.model, prompt=PROMPT, max_tokens=2, temperature=0)
            self.assertEqual(len(r.choices), 1)
        with self.server.client(api_key=self.KEY, strict=False) as client:
            chunks = list(client.completions.create(model=self.server.model, prompt=PROMPT, max_tokens=2, temperature=0, stream=True))
            self.assertEqual([c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason], ["length"])

    def test_health_needs_no_key(self):
        with urllib.request.urlopen(self.server.base + "/health", timeout=5) as r:
            self.assertEqual(r.status, 200)


class StartupSigtermTest(unittest.TestCase):
    def test_sigterm_while_starting(self):
        """SIGTERM while the server compiles and loads the model (before it listens) stops it too.

        The bundled model is compiled at start-up (the working directory has no default.pgc), and
        `pagedc: compiling the bundled model` is printed after the server blocks SIGTERM for its
        signal thread and before it listens: the signal is sent when that line comes, so it is
        pending when the signal thread starts, next to the start of the HTTP loop. Three times:
        the two threads race."""
        if OPTIONS.artifact:
            self.skipTest("needs the bundled model: an artifact prints nothing while it loads to time the signal by")
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                self.sigterm_while_starting()

    def sigterm_while_starting(self):
        cmd = [OPTIONS.pagedc, "serve", "--port", "0", "--threads", "1", "--kv-cache-memory", "256MiB"]
        workdir = tempfile.mkdtemp(prefix="pagedc-client-test-")
        try:
            proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace")
            lines = []
            first = threading.Event()

            def read():
                for line in proc.stdout:
                    lines.append(line)
                    first.set()
                first.set()
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            self.assertTrue(first.wait(STARTUP_TIMEOUT_S), "pagedc serve printed nothing")
            self.assertIn("compiling the bundled model", lines[0] if lines else "", "".join(lines))
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                reader.join(5)
                self.fail("pagedc serve still runs 15 s after a SIGTERM sent while it loaded the model:\n" + "".join(lines))
            reader.join(5)
            self.assertEqual(proc.returncode, 0, "".join(lines))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            shutil.rmtree(workdir, ignore_errors=True)


class ShutdownTest(ClientTest):
    """Runs last (load_tests): SIGTERM lets a running stream finish, then the server exits 0."""

    def test_sigterm(self):
        stream = self.lenient.completions.create(model=MODEL, prompt=PROMPT, max_tokens=200, temperature=0, stream=True,
                                                extra_body={"ignore_eos": True}, stream_options={"include_usage": True})
        chunks = iter(stream)
        first = next(chunks)
        SERVER.proc.send_signal(signal.SIGTERM)
        # Draining: /health says 503, and a new request gets 503 (the client's InternalServerError).
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(SERVER.base + "/health", timeout=5):
                    pass
            except urllib.error.HTTPError as e:
                self.assertEqual(e.code, 503)
                break
            self.assertLess(time.monotonic(), deadline, "/health still 200 5 s after SIGTERM")
            time.sleep(0.02)
        with self.assertRaises(openai.InternalServerError) as cm:
            self.client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=2)
        self.assertEqual(cm.exception.status_code, 503)
        rest = list(chunks)
        usage = rest[-1].usage if rest else first.usage
        finish = [c.finish_reason for chunk in [first, *rest] for c in chunk.choices if c.finish_reason]
        self.assertEqual(finish, ["length"], "the running stream was not let finish after SIGTERM")
        self.assertIsNotNone(usage)
        self.assertEqual(usage.completion_tokens, 200)
        try:
            rc = SERVER.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail(f"pagedc serve still runs 5 s after SIGTERM:\n{SERVER.output()}")
        SERVER._reader.join(5)
        self.assertEqual(rc, 0, SERVER.output())
        self.assertIn("pagedc serve: stopped", SERVER.output())


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (CompletionsTest, ChatTest, ModelsTest, ErrorsTest, ConcurrencyTest, DisconnectTest, AuthTest, StartupSigtermTest,
                ShutdownTest):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--pagedc", required=True, help="the pagedc binary")
    parser.add_argument("--artifact", help="serve this compiled model instead of the bundled default model")
    options, rest = parser.parse_known_args()
    OPTIONS.pagedc = os.path.abspath(options.pagedc)
    OPTIONS.artifact = os.path.abspath(options.artifact) if options.artifact else None
    if not os.access(OPTIONS.pagedc, os.X_OK):
        sys.exit(f"test_openai_client: {OPTIONS.pagedc} is not an executable")
    print(f"openai {openai.__version__}, python {sys.version.split()[0]}, {OPTIONS.pagedc} serve {OPTIONS.artifact or '(default model)'}",
          flush=True)
    started = time.monotonic()
    program = unittest.main(argv=[sys.argv[0], *rest], exit=False)
    result = program.result
    print(f"test_openai_client: {time.monotonic() - started:.1f} s", flush=True)
    ok = result.wasSuccessful() and result.testsRun > 0
    if not ok and SERVER is not None:
        print(f"---- pagedc serve's output (last 200 lines) ----\n{SERVER.output()}", flush=True)
    if not OPTIONS.artifact and result.skipped:
        # With the bundled model nothing may be skipped.
        print(f"test_openai_client: {len(result.skipped)} tests skipped with the default model", flush=True)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
