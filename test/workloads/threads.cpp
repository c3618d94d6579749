// std::thread, std::async, atomics, a condition variable.
#include <atomic>
#include <condition_variable>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

int main() {
    std::atomic<long> total{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; i++) threads.emplace_back([&total, i] { total += i; });
    for (auto &t : threads) t.join();
    auto f = std::async(std::launch::async, [] { return 6 * 7; });
    std::mutex m;
    std::condition_variable cv;
    bool ready = false;
    std::thread signaller([&] { std::lock_guard<std::mutex> g(m); ready = true; cv.notify_one(); });
    { std::unique_lock<std::mutex> l(m); cv.wait(l, [&] { return ready; }); }
    signaller.join();
    std::cout << "threads " << total << " async " << f.get() << std::endl;
    std::cout << "ok cpp" << std::endl;
}
