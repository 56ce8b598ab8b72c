#include "lua/prelude.h"

namespace syncd::lua {

// `sync{}` flattens its layers as lsyncd does: the table's own keys win, then each layer in
// order fills in what is still missing; `rsync` and `ssh` sub-tables are merged key by key.
const char kPrelude[] = R"lua(
local records = ...
local syncs, settings_calls = records.syncs, records.settings

default = {
  rsync = { _syncd_kind = 'rsync' },
  rsyncssh = { _syncd_kind = 'rsyncssh' },
  direct = { _syncd_kind = 'direct' },
}

local merged_subtables = { rsync = true, ssh = true }

local function flatten(t, seen)
  if seen[t] then error('sync{}: a layer includes itself', 3) end
  seen[t] = true
  local out = {}
  for k, v in pairs(t) do
    if math.type(k) ~= 'integer' then
      if merged_subtables[k] and type(v) == 'table' then
        local copy = {}
        for kk, vv in pairs(v) do copy[kk] = vv end
        out[k] = copy
      else
        out[k] = v
      end
    end
  end
  for _, layer in ipairs(t) do
    if type(layer) ~= 'table' then
      error('sync{}: positional entries must be layers such as default.rsyncssh, got ' ..
            type(layer), 3)
    end
    local parent = flatten(layer, seen)
    for k, v in pairs(parent) do
      if out[k] == nil then
        out[k] = v
      elseif merged_subtables[k] and type(out[k]) == 'table' and type(v) == 'table' then
        for kk, vv in pairs(v) do
          if out[k][kk] == nil then out[k][kk] = vv end
        end
      end
    end
  end
  seen[t] = nil
  return out
end

function sync(t)
  if type(t) ~= 'table' then error('sync{} expects a table, got ' .. type(t), 2) end
  local info = debug.getinfo(2, 'Sl')
  syncs[#syncs + 1] = { config = flatten(t, {}), file = info.short_src, line = info.currentline }
end

-- lsyncd's helpers for configs.
function terminate(code)
  error(('the configuration called terminate(%s)'):format(tostring(code)), 2)
end
function string.starts(s, prefix) return s:sub(1, #prefix) == prefix end
function string.ends(s, suffix) return suffix == '' or s:sub(-#suffix) == suffix end
-- What syncd does not provide: named, with the caller's line, instead of a nil call.
for _, name in ipairs({ 'alarm', 'observefd', 'nonobservefd' }) do
  _ENV[name] = function()
    error(name .. '() is an lsyncd function syncd does not provide', 2)
  end
end

local current_settings = {}

function settings(t)
  if type(t) == 'string' then return current_settings[t] end
  if type(t) ~= 'table' then error('settings{} expects a table, got ' .. type(t), 2) end
  local info = debug.getinfo(2, 'Sl')
  local call = { values = {}, file = info.short_src, line = info.currentline }
  for k, v in pairs(t) do
    -- settings{ 'nodaemon' } means nodaemon = true.
    if math.type(k) == 'integer' and type(v) == 'string' then k, v = v, true end
    call.values[k] = v
    current_settings[k] = v
  end
  settings_calls[#settings_calls + 1] = call
end
)lua";

}  // namespace syncd::lua
namespace syncd::lua {
const size_t kPreludeSize = sizeof kPrelude - 1;
}
