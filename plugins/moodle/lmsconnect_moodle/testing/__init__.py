"""A simulated Moodle 5.0 web-service site for tests, demos and benchmarks.

>>> from lmsconnect_moodle.testing import MoodleSimulator
>>> async with MoodleSimulator(users=20, courses=4, enrollments=30, seed=1) as sim:  # doctest: +SKIP
...     print(sim.connect_config)

See `MoodleSimulator` for the options (sizes, seed, latency, faults, completion aggregation delay,
debugging, and the ``site="fixture"`` mode that reproduces the site recorded in ``fixtures/moodle-5``).
"""

from ._server import DEFAULT_SERVICE_FUNCTIONS, MoodleSimulator
from ._site import Site

__all__ = ["DEFAULT_SERVICE_FUNCTIONS", "MoodleSimulator", "Site"]
