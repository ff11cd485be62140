"""Benchmarks of okx-grid-async against the simulator, and against ccxt and python-okx.

Run them all with ``make bench`` (or ``python -m benchmarks``), one with
``python -m benchmarks NAME``; ``python -m benchmarks --list`` names them.
Each benchmark is one module here; what they share:

- :mod:`benchmarks.report`: the machine line and the tables every benchmark prints;
- :mod:`benchmarks.simulator_process`: a GridSimulator in its own OS process, so
  that the CPU and memory measured are the client's alone;
- :mod:`benchmarks.peers`: the clients compared (this one, ccxt, python-okx, and
  raw aiohttp as the floor).

The peers (``benchmarks/requirements.txt``) are benchmark-only; a peer that cannot
be imported or fails is printed as ``unavailable (reason)`` and the run goes on.
"""
