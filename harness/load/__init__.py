"""Case, eval and profile files: YAML read strictly, validated by the shipped JSON Schemas, templates rendered into
request bodies; every problem as file:line and JSON pointer.
"""
