"""The local AWS: moto plus the project's gap fillers, a local training executor and a model server.

Nothing in here is shipped to Lambda. See docs/LOCAL_AWS.md for what is emulated and how.
"""
