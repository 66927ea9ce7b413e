"""The 360Learning connector for lmsconnect."""
