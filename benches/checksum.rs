// Placeholder until the checksum benchmark lands.
fn main() {}
