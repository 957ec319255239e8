"""What an answer is checked against: the built-in checks and the LLM judge."""
