"""Operations: the trading kill switch (``killswitch``) and its admin endpoints and commands."""
