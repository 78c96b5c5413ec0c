"""The test servers, sync and asyncio side by side, one file per feature, and the fake-clock server."""
