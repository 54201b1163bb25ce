"""Key backends behind one interface (the core's `KeyRing`): software today, PKCS#11 next."""
