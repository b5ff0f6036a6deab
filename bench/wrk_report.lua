-- wrk script of the benchmark runner (bench/loadgen.py reads its output).
-- Counts every response whose status is not 2xx as an error, and at the end prints one line
--   BENCH-WRK {"requests": ..., "non2xx": ..., "p50_us": ..., ...}
-- with the request count, duration, socket errors and latency percentiles (µs).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH-WRK {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
      '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "p99.9_us": %.1f, "max_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, bad,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
