# Loads the promptvcr plugin: evals/*.yaml become test items (see harness/plugin.py).
pytest_plugins = ["harness.plugin"]
