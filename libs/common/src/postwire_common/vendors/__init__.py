"""The vendors' wire protocols (signatures, parameter and error shapes), shared by the
services that answer their actions."""
