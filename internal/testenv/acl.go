package testenv

import (
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/hammer-go/hammerredis/internal/redistest"
)

// The ACL user of the security and chaos tests.
const (
	ACLUser     = "limiter"
	ACLPassword = "s3cret-Zq9xKk7y" // distinctive, so a leak cannot hide in ordinary text
	ACLPrefix   = "Hammer:Redis:"   // the default KeyPrefix
)

// MinimalCommands is the least a backend needs (database 0, no
// ClientName): PING at connection start and as the health check, the
// count_hit script (EVALSHA, EVAL after NOSCRIPT) and the commands it runs,
// which Redis 7 checks against the user too, HMGET for get_bucket and
// SCAN + DEL for delete_buckets. SCRIPT LOAD is optional: without it the
// first EVALSHA gets NOSCRIPT and EVAL runs instead.
var MinimalCommands = []string{
	"+ping", "+evalsha", "+eval", "+hincrby", "+hsetnx", "+hset", "+expire", "+hmget", "+scan", "+del",
}

// ACLRules returns ACL rules for a user with password ACLPassword, keys
// matching keys, no pub/sub channels and only commands.
func ACLRules(keys string, commands ...string) []string {
	return append([]string{"on", ">" + ACLPassword, keys, "resetchannels", "-@all"}, commands...)
}

// MinimalRules is the minimal ACL for the default key prefix.
func MinimalRules() []string { return ACLRules("~"+ACLPrefix+"*", MinimalCommands...) }

// ACLUserArgs returns redis-server arguments that keep the default user as
// the admin (no password, everything) and define the user ACLUser with
// MinimalRules.
func ACLUserArgs() []string {
	args := []string{"--user", "default", "on", "nopass", "~*", "&*", "+@all", "--user", ACLUser}
	return append(args, MinimalRules()...)
}

// ACLServer starts a private server with ACLUserArgs.
func ACLServer(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.New(t, redistest.Options{Args: ACLUserArgs()})
}

// SetUser creates or replaces the ACL user name with rules.
func SetUser(t *testing.T, admin redis.Conn, name string, rules []string) {
	t.Helper()
	args := []any{"SETUSER", name, "reset"}
	for _, r := range rules {
		args = append(args, r)
	}
	Do(t, admin, "ACL", args...)
}

// UserURL returns scheme://user:password@addr.
func UserURL(scheme, user, password, addr string) string {
	return scheme + "://" + user + ":" + password + "@" + addr
}
