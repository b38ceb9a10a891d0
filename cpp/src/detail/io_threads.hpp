#pragma once
// Private: the process's I/O threads. They run file writes, fsyncs and renames, which wait on the
// device rather than compute, beside the compute pool (default_executor), so that encoding goes on
// while the disk works and enough syncs are in flight for the filesystem to commit them together.
#include <functional>

namespace voxcore::detail {

// How many I/O threads there are.
int io_thread_count() noexcept;

// Runs job on an I/O thread; job must not throw. The threads start on first use, and a forked
// child starts its own.
void run_on_io_thread(std::function<void()> job);

}  // namespace voxcore::detail
