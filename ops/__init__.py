"""Operations: the local development stack, broker accounts, credentials and secrets."""
