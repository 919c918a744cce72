//! A loopback HTTP listener that receives one OAuth authorization response.
