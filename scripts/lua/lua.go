// Package lua embeds the Lua scripts that run inside Redis. The sources sit
// beside this file so they can be read, and run with redis-cli --eval, as
// they are; go:embed cannot reach a parent folder, hence this tiny package.
package lua

import _ "embed"

// Window is window.lua: reserve, cancel and read sliding-window quotas in
// one atomic step, on the server's clock. Its header documents its keys,
// arguments and replies.
//
//go:embed window.lua
var Window string
