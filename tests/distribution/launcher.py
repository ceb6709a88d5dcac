"""Starts K worker processes on this machine, as a cluster would.

The recipe for a real cluster, on one host: every worker runs the same
script and learns its rank and the cluster from its environment; the
launcher waits for all of them, kills the rest as soon as one fails and
bounds every wait. Only the loopback address is used, on ports the
operating system reports free.

Example:
```python
results = launch(
    [sys.executable, "train.py"],
    num_processes=2,
    env=lambda rank, ports: jax_environment(rank, 2, ports[0]),
    timeout=300,
)
```
"""

import os
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
# The environment variable that hands the workers the launcher's slowdown.
SLOWDOWN_VARIABLE = "KERAS_T2T_SLOWDOWN"


def slowdown():
    """How many times slower than a quiet machine work runs here now.

    The runnable processes per core over the last minute (at least 1): on
    2 cores with two other trainings running (load ~8), a worker's import,
    start-up and heartbeats take ~4 times as long as on idle cores. Every
    bounded wait of a launch is its quiet-machine bound times this, so
    that a loaded CI waits for the work instead of failing by chance. The
    workers read the launcher's value (`SLOWDOWN_VARIABLE`), so both sides
    agree.
    """
    if SLOWDOWN_VARIABLE in os.environ:
        return float(os.environ[SLOWDOWN_VARIABLE])
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


class WorkerError(RuntimeError):
    """A worker failed (or the run timed out); names the rank and its log."""


def free_ports(count):
    """`count` distinct TCP ports free on the loopback address now.

    The sockets are held open together, so no port is returned twice; a
    port can still be taken by another program before a worker binds it
    (the usual race; the workers then fail at once, not hang).
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def jax_environment(rank, num_processes, port):
    """What `keras.distribution.initialize()` reads on every worker."""
    return {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"{HOST}:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(num_processes),
        "KERAS_DISTRIBUTION_PROCESS_ID": str(rank),
    }


def tf_environment(rank, ports):
    """A `TF_CONFIG` naming one worker per port; this one is `rank`."""
    import json

    workers = [f"{HOST}:{port}" for port in ports]
    config = {
        "cluster": {"worker": workers},
        "task": {"type": "worker", "index": rank},
    }
    return {"TF_CONFIG": json.dumps(config)}


def launch(
    argv,
    num_processes,
    env,
    timeout,
    num_ports=1,
    kill_on_failure=True,
    log_dir=None,
):
    """Runs `argv` as `num_processes` workers; returns their logs by rank.

    Each worker's environment is this process's plus `env(rank, ports)`
    (ports: `num_ports` free loopback ports, the same for every worker)
    and `WORKER_RANK`. Output goes to one log file per worker, so a
    chatty worker cannot block on a full pipe.

    Args:
        argv: list. The command every worker runs.
        num_processes: int. How many workers.
        env: callable `(rank, ports) -> dict` of environment variables.
        timeout: float. Seconds the whole run may take; then every worker
            still running is killed and `WorkerError` raised.
        num_ports: int. Free ports to reserve for the cluster.
        kill_on_failure: bool. Kill the other workers as soon as one exits
            with an error (what a launcher does). `False` lets them run on
            (up to `timeout`), to see how they stop by themselves.
        log_dir: str. Where the logs go; a temporary folder by default.

    Returns:
        A list, by rank, of dicts with `returncode`, `log` and `seconds`
        (from the start to the worker's exit).

    Raises:
        WorkerError: a worker exited non-zero (with `kill_on_failure`) or
            the run exceeded `timeout`; the message names the rank and
            ends with the logs' last lines.
    """
    log_dir = log_dir or tempfile.mkdtemp(prefix="workers-")
    ports = free_ports(num_ports)
    start = time.monotonic()
    workers = []
    for rank in range(num_processes):
        path = os.path.join(log_dir, f"worker-{rank}.log")
        worker_env = dict(os.environ, WORKER_RANK=str(rank))
        worker_env.update(env(rank, ports))
        with open(path, "w") as log:
            process = subprocess.Popen(
                argv,
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so a kill reaches its children.
                start_new_session=True,
            )
        workers.append({"process": process, "path": path, "seconds": None})

    failure = None
    while True:
        running = []
        for rank, worker in enumerate(workers):
            code = worker["process"].poll()
            if code is None:
                running.append(rank)
            elif worker["seconds"] is None:
                worker["seconds"] = time.monotonic() - start
                if code != 0 and failure is None:
                    failure = f"worker {rank} exited with {code}"
        if not running:
            break
        if failure and kill_on_failure:
            failure += f"; killed worker(s) {running}"
            break
        if time.monotonic() - start > timeout:
            failure = (
                f"timed out after {timeout:.0f}s; worker(s) {running} still "
                f"running, killed"
            )
            break
        time.sleep(0.1)
    for worker in workers:
        _kill(worker["process"])

    results = []
    for worker in workers:
        with open(worker["path"], errors="replace") as log:
            text = log.read()
        results.append(
            {
                "returncode": worker["process"].returncode,
                "log": text,
                "seconds": worker["seconds"],
            }
        )
    if failure and (kill_on_failure or "timed out" in failure):
        tails = "\n".join(
            f"--- worker {rank} (exit {result['returncode']}) ---\n"
            + _tail(result["log"])
            for rank, result in enumerate(results)
        )
        raise WorkerError(f"{failure}.\n{tails}")
    return results


def _kill(process):
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def _tail(text, lines=40):
    return "\n".join(text.strip().splitlines()[-lines:])
