-- redtail idempotent batch publish. One call per batch of lines of ONE file.
--
-- KEYS[1] offsets hash (redtail:offsets)
-- KEYS[2] stream key (stream mode only)
-- ARGV[1] hash field "<source>:<fid>"   ARGV[2] mode: "s" stream, "p" pubsub
-- ARGV[3] MAXLEN (0 = no trim)          ARGV[4] src  ARGV[5] path  ARGV[6] fid  ARGV[7] ct
-- ARGV[8] channel (pubsub mode)
-- ARGV[9] "after": '' or an offset; with an offset the batch is refused (nothing written,
--         reply {0, 0, committed, '', 1}) unless the committed offset has reached it. A batch
--         sent while its predecessor is still in flight carries the predecessor's end, so a
--         predecessor that failed cannot be overtaken (its lines would then count as committed).
-- then 4 per line: start offset, end offset, flags, line bytes; flags is "0" (a plain
-- line), "1" (a cut line: `trunc 1`) or "<0|1>,<n>" (an event of n > 1 lines: `lines n`).
-- Line end offsets increase within a batch.
--
-- A line whose end offset is not beyond the committed offset was published
-- before (a retry after a lost reply, or a restart from an older checkpoint):
-- it is skipped. The committed offset is stored in the same atomic step as the
-- XADDs, so no crash of the watcher can separate "published" from "committed".
-- Redis checks OOM before the first write only, so a refused batch writes nothing.
local field = ARGV[1]
local mode = ARGV[2]
local maxlen = ARGV[3]
local src, path, fid, ct, channel = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local committed_str = redis.call('HGET', KEYS[1], field)
local committed = 0
if committed_str then committed = tonumber(committed_str) else committed_str = '0' end
if ARGV[9] ~= '' and committed < tonumber(ARGV[9]) then
  return {0, 0, committed_str, '', 1}
end
local n = #ARGV
local first = 10
-- Skip what Redis already has. Ends increase, so only a retry or a restart from an older
-- checkpoint pays this loop; a fresh batch passes with one comparison.
while first + 3 <= n and tonumber(ARGV[first + 1]) <= committed do
  first = first + 4
end
local skipped = (first - 10) / 4
local added = 0
local trim_error = ''
local stream = KEYS[2]
local last = first
for i = first, n - 3, 4 do
  if mode == 's' then
    local flags = ARGV[i + 2]
    if flags == '0' then
      redis.call('XADD', stream, '*', 'line', ARGV[i + 3], 'src', src, 'path', path, 'off', ARGV[i], 'fid', fid, 'ct', ct)
    elseif flags == '1' then
      redis.call('XADD', stream, '*', 'line', ARGV[i + 3], 'src', src, 'path', path, 'off', ARGV[i], 'fid', fid, 'trunc', '1', 'ct', ct)
    else
      local cut, count = string.match(flags, '^([01]),(%d+)$')
      if cut == '1' then
        redis.call('XADD', stream, '*', 'line', ARGV[i + 3], 'src', src, 'path', path, 'off', ARGV[i], 'fid', fid, 'trunc', '1', 'lines', count, 'ct', ct)
      else
        redis.call('XADD', stream, '*', 'line', ARGV[i + 3], 'src', src, 'path', path, 'off', ARGV[i], 'fid', fid, 'lines', count, 'ct', ct)
      end
    end
  else
    redis.call('PUBLISH', channel, ARGV[i + 3])
  end
  added = added + 1
  last = i
end
if added > 0 then
  committed_str = ARGV[last + 1]
  -- The offset is stored right after the XADDs: nothing that can fail may run
  -- between the first XADD and this HSET, or a retry would append the lines again.
  redis.call('HSET', KEYS[1], field, committed_str)
  -- One approximate trim per batch instead of MAXLEN on every XADD: the same
  -- bound (whole radix nodes are dropped either way), a fraction of the cost.
  -- pcall: a refused trim (e.g. an ACL without XTRIM) must not fail the batch.
  if mode == 's' and maxlen ~= '0' then
    local trimmed = redis.pcall('XTRIM', stream, 'MAXLEN', '~', maxlen)
    if type(trimmed) == 'table' and trimmed.err then
      trim_error = trimmed.err
    end
  end
elseif skipped > 0 then
  -- Everything was there already (a resend, or a restart from an older checkpoint): write
  -- the same offset again anyway. A WAIT after this call counts the replicas that have this
  -- connection's last write; newer Redis versions record that offset only for a command that
  -- was replicated (7.0 records it after any command), so without a write here a WAIT on a
  -- new connection would vouch for lines another connection wrote that no replica has yet.
  redis.call('HSET', KEYS[1], field, committed_str)
end
return {added, skipped, committed_str, trim_error, 0}
