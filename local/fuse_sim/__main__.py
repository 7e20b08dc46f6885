"""`python -m local.fuse_sim [--port 8089] [--mode hang]`: the simulator alone, on 127.0.0.1."""

from __future__ import annotations

import argparse
import signal
import threading

from local.fuse_sim.simulator import MODES, FuseSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Fuse simulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--mode", choices=MODES, default="normal")
    parser.add_argument(
        "--queue-rate-limit",
        type=int,
        default=0,
        help="refuse (500) single queue requests past this many a second (0: no limit)",
    )
    args = parser.parse_args()
    simulator = FuseSimulator(
        port=args.port, mode=args.mode, queue_rate_limit=args.queue_rate_limit
    ).start()
    print(f"Fuse simulator on {simulator.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
