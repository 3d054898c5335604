"""Generators in processes of their own: one inference engine per GPU (or block of GPUs) beside training.

The Challenger phase scores its questions with the frozen Solver while it trains. On GPU that Solver is a vLLM
engine, which must not share a process with TRL's colocated rollout engine (vLLM keeps process-wide parallel
state), and with `challenger.solverGpus` it runs on GPUs the training ranks do not use, as the reference serves
its Solver on 4 of 8 GPUs. `ProcessGenerator` runs any backend (`make_generator`'s choice: vLLM on GPU,
transformers on CPU) in a spawned child pinned to the given GPUs; `SplitGenerator` spreads one request over
several of them at once. Both are `Generator`s: the caller does not know where the answers come from.

The child leaves torchrun's variables behind (it is one process, not a rank) and talks over a pipe: a request
is (prompts, n, sampling, seed), an answer the completions or the error message.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rzero_worker.generation.base import Prompt, check_request
from rzero_worker.task import DeviceHints, Sampling

log = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                      "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")
SEED_STRIDE = 1_000_003  # distinct seeds for the parts of one request spread over several engines
POLL_SECONDS = 5.0
START_TIMEOUT_S = 1800.0  # a large model's first load (and vLLM's CUDA graph capture) takes minutes


class EngineProcessError(RuntimeError):
    """The engine process failed to start, died, or raised while generating (retryable: the phase fails)."""


class ProcessGenerator:
    """A generator for `local` running in a child process, on `devices` (CUDA_VISIBLE_DEVICES) when given.

    `sleep_between_calls`: a vLLM engine frees its GPU memory between requests (it shares the GPU with training)."""

    def __init__(self, local, hints: DeviceHints, *, devices: list[str] | None = None, cache_dir: Path | None = None,
                 sleep_between_calls: bool = False, start_timeout_s: float = START_TIMEOUT_S):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        # Not a daemon: vLLM starts processes of its own, which a daemonic process may not.
        self._process = context.Process(
            target=_serve, args=(child, local, hints, devices, cache_dir, sleep_between_calls), name="rzero-engine"
        )
        self._process.start()
        child.close()
        self.devices = devices
        # Runs on close() or, at the latest, before multiprocessing joins its children at exit: an engine left
        # waiting for requests would otherwise keep the exiting rank waiting for ever.
        self._shutdown = multiprocessing.util.Finalize(self, _shut_down, args=(self._conn, self._process),
                                                       exitpriority=10)
        try:
            self._receive(start_timeout_s)
        except BaseException:
            self.close()
            raise
        log.info("engine process %d ready on %s", self._process.pid, ",".join(devices) if devices else "the CPU")

    def generate(self, prompts: list[Prompt], *, n: int, sampling: Sampling, seed: int) -> list[list[str]]:
        check_request(prompts, n)
        if not prompts:
            return []
        self._conn.send(("generate", prompts, n, sampling, seed))
        return self._receive(None)

    def _receive(self, timeout_s: float | None):
        waited = 0.0
        while not self._conn.poll(POLL_SECONDS):
            waited += POLL_SECONDS
            if not self._process.is_alive():
                raise EngineProcessError(f"the engine process exited with code {self._process.exitcode}")
            if timeout_s is not None and waited >= timeout_s:
                raise EngineProcessError(f"the engine process did not start within {timeout_s:.0f} s")
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            self._process.join(5)
            raise EngineProcessError(f"the engine process exited with code {self._process.exitcode}") from None
        if kind == "error":
            raise EngineProcessError(payload)
        return payload

    def close(self) -> None:
        self._shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SplitGenerator:
    """Spreads each request over several generators at once (contiguous, near-equal parts; part i seeded
    `seed + i * SEED_STRIDE`) and returns the completions in prompt order."""

    def __init__(self, generators: list):
        if not generators:
            raise ValueError("SplitGenerator needs at least one generator")
        self.generators = generators

    def generate(self, prompts: list[Prompt], *, n: int, sampling: Sampling, seed: int) -> list[list[str]]:
        from rzero_worker.distributed import split_evenly

        check_request(prompts, n)
        parts = [prompts[split_evenly(len(prompts), len(self.generators), i)] for i in range(len(self.generators))]
        with ThreadPoolExecutor(len(self.generators)) as pool:
            futures = [pool.submit(generator.generate, part, n=n, sampling=sampling, seed=seed + i * SEED_STRIDE)
                       for i, (generator, part) in enumerate(zip(self.generators, parts)) if part]
            return [completions for future in futures for completions in future.result()]

    def close(self) -> None:
        for generator in self.generators:
            generator.close()


def start_engines(count: int, start) -> SplitGenerator:
    """`count` engines from `start(index)`, as one SplitGenerator; those already started are closed if one fails."""
    engines: list = []
    try:
        for index in range(count):
            engines.append(start(index))
    except BaseException:
        for engine in engines:
            engine.close()
        raise
    return SplitGenerator(engines)


def _shut_down(conn, process) -> None:
    if process.is_alive():
        try:
            conn.send(("close",))
        except (BrokenPipeError, OSError):
            pass
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()
    conn.close()


def _serve(conn, local, hints: DeviceHints, devices: list[str] | None, cache_dir: Path | None, sleep: bool) -> None:
    """The child: build the generator, then answer requests until told to close (or the parent goes away)."""
    for name in TORCHRUN_VARIABLES:
        os.environ.pop(name, None)
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    try:
        generator = _build(local, hints, cache_dir, sleep)
    except BaseException as error:  # noqa: BLE001 - the parent must hear why the engine could not start
        conn.send(("error", f"could not start the engine: {type(error).__name__}: {error}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if request[0] == "close":
            return
        _, prompts, n, sampling, seed = request
        try:
            conn.send(("ok", generator.generate(prompts, n=n, sampling=sampling, seed=seed)))
        except Exception as error:  # noqa: BLE001
            conn.send(("error", f"{type(error).__name__}: {error}"))


def _build(local, hints: DeviceHints, cache_dir: Path | None, sleep: bool):
    from rzero_worker.generation.select import choose_backend, make_generator

    if choose_backend(hints) == "vllm":
        from rzero_worker.generation.vllm_backend import VLLMGenerator, prepare_model_dir

        return VLLMGenerator(prepare_model_dir(local, cache_dir), hints, sleep_between_calls=sleep)
    return make_generator(local, hints, cache_dir=cache_dir)
