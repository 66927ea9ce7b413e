"""An offline 360Learning API v2 for tests, demos and benchmarks.

```python
from lmsconnect_360learning.testing import Learning360Simulator

async with Learning360Simulator(users=50, courses=10, enrollments=200) as sim:
    print(sim.url, sim.connect_config)
```
"""

from ._server import ALL_SCOPES, Learning360Simulator
from ._state import (
    ApiError,
    Company,
    SimAttempt,
    SimBulkOperation,
    SimCourse,
    SimIntegration,
    SimUser,
)

__all__ = [
    "ALL_SCOPES",
    "ApiError",
    "Company",
    "Learning360Simulator",
    "SimAttempt",
    "SimBulkOperation",
    "SimCourse",
    "SimIntegration",
    "SimUser",
]
