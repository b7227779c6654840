"""Foundation: typed one-line errors, the plug-in registry and plug-in loading."""
