// std::thread, channels, Arc<Mutex>, std::process::Command.
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

fn main() {
    let total = Arc::new(Mutex::new(0));
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let total = Arc::clone(&total);
            let tx = tx.clone();
            thread::spawn(move || {
                *total.lock().unwrap() += i;
                tx.send(i).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(tx);
    let received: i32 = rx.iter().sum();
    let child = Command::new("echo").arg("child").output().unwrap();
    println!("threads {} received {} {}", *total.lock().unwrap(), received, String::from_utf8_lossy(&child.stdout).trim());
    println!("ok rust");
}
