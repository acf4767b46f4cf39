"""The library's scripted policies; importing this registers them with :func:`make_scripted`."""
