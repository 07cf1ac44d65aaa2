fn main() {
    println!("greway");
}
