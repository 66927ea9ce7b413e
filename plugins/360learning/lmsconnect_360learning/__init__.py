"""The 360Learning connector for lmsconnect (360Learning API v2).

>>> import lmsconnect
>>> async with lmsconnect.connect("360learning", client_id=..., client_secret=..., region="eu",
...                               integration_id=...) as lms:
...     async for user in lms.list(lmsconnect.User):
...         print(user.work_email)

The offline simulator is `lmsconnect_360learning.testing.Learning360Simulator`.
"""

from __future__ import annotations

from ._capabilities import CAPABILITIES
from ._connector import REGIONS, Learning360Config, Learning360Connector

__all__ = ["CAPABILITIES", "REGIONS", "Learning360Config", "Learning360Connector"]
