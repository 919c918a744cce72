//! Token storage: keyring, file and memory backends behind one small trait.
