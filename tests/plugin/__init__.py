"""The pytest plugin from the outside: precedence, bad input, registration, server fixtures."""
