"""renderspec: declarative, reproducible, incremental builds of reference-to-video storyboards."""

__version__ = "0.1.0"
