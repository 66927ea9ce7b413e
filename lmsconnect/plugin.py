"""What a connector plugin is built from: the base class, capability builders, config, transport.

Embedding services need only `lmsconnect`; plugin authors import from here. See docs/plugin-guide.md.
"""

from __future__ import annotations

from ._capabilities import (
    ActionCapability,
    ActionFlag,
    Capabilities,
    FeatureCapability,
    FieldCapability,
    ModelCapability,
    Support,
    action_support,
    model_support,
)
from ._config import ConfigField, config_field
from ._connector import CheckItem, CheckReport, CheckStatus, Connector, ConnectorSpec
from ._converters import configure_converter, make_converter, parse_datetime, structure_wire, wire_excerpt
from ._errors import trim
from ._http import (
    BudgetWait,
    HttpClient,
    HttpOptions,
    HttpStats,
    PageGuard,
    RateBudget,
    RateWindow,
    Response,
    default_error,
    next_link,
    paginate_link,
    paginate_offset,
    paginate_pages,
    retry_after,
    stream_map,
)
from ._models import make_id, parse_id
from ._progress import announce_pages, announce_total, total_wanted
from ._secrets import Secret, scrub

__all__ = [
    "ActionCapability",
    "ActionFlag",
    "BudgetWait",
    "Capabilities",
    "CheckItem",
    "CheckReport",
    "CheckStatus",
    "ConfigField",
    "Connector",
    "ConnectorSpec",
    "FeatureCapability",
    "FieldCapability",
    "HttpClient",
    "HttpOptions",
    "HttpStats",
    "ModelCapability",
    "PageGuard",
    "RateBudget",
    "RateWindow",
    "Response",
    "Secret",
    "Support",
    "action_support",
    "announce_pages",
    "announce_total",
    "config_field",
    "configure_converter",
    "default_error",
    "make_converter",
    "make_id",
    "model_support",
    "next_link",
    "paginate_link",
    "paginate_offset",
    "paginate_pages",
    "parse_datetime",
    "parse_id",
    "retry_after",
    "scrub",
    "stream_map",
    "structure_wire",
    "total_wanted",
    "trim",
    "wire_excerpt",
]
