# Loads the promptvcr plugin: evals/*.yaml become test items (see harness/plugin/).
pytest_plugins = ["harness.plugin"]
