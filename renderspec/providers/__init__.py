"""Clients of the video services behind one small interface (see `base.Provider`)."""
