"""Moodle 5.x connector for lmsconnect (web services, REST protocol)."""
