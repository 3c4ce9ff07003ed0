"""The pure core: spec text and file facts in, planned shots and keys out.

Nothing under this package touches the network, the disk, the clock, the environment or the
console, and it imports none of httpx, anyio, av, PIL or rich (a test walks the imports).
"""
