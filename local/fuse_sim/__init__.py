"""A small, honest model of Plum Fuse's API (docs/fuse-contract.md), for tests and make local.

- simulator.py: the endpoints (queue, bulk_queue, cancel, status), the calls they start, the
  scheduler that ends them and posts their results, and the control API (`/_sim/...`);
- rules.py: the documented field rules; results.py: call_details and callback encodings;
- http_server.py: the keep-alive HTTP/1.1 front on loopback.
"""

from local.fuse_sim.results import SimCall, encode_result
from local.fuse_sim.simulator import MODES, FuseSimulator, Received

__all__ = ["MODES", "FuseSimulator", "Received", "SimCall", "encode_result"]
