// Package lua embeds the Lua scripts that run inside Redis. The sources sit
// beside this file so they can be read, and run with redis-cli --eval, as
// they are; go:embed cannot reach a parent folder, hence this tiny package.
package lua

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
)

// Window is window.lua: reserve, cancel and read sliding-window quotas in
// one atomic step, on the server's clock. Its header documents its keys,
// arguments and replies.
//
//go:embed window.lua
var Window string

// Function is the name Library registers window.lua under, and the
// library's own name: "ratelimit_window_" and a hash of the source, so
// processes that run different builds against one server never replace
// each other's code.
var Function = function()

// Library is window.lua as a Redis function library (FUNCTION LOAD, Redis
// 7 and later), registering one function, [Function], that takes the same
// keys and arguments and gives the same replies. Its helpers are defined
// once, when the library loads, not again on every call as a script's are.
var Library = "#!lua name=" + Function + "\nlocal run = (function()\n" + Window +
	"\nend)()\nredis.register_function('" + Function + "', run)\n"

func function() string {
	sum := sha1.Sum([]byte(Window))
	return "ratelimit_window_" + hex.EncodeToString(sum[:8])
}
