package redis

import "net/url"

// KeyFor builds a quota key from user input: prefix + ":{" + tenant + "}:" +
// name, with tenant and name escaped (url.QueryEscape) so that no input can
// leave its place, end the hash tag early, or make two tenants share a key.
// Every key of one tenant shares a Cluster slot, so a tenant's quotas can
// form one composite. An empty tenant is written "*" (an empty hash tag
// would spread its keys over slots; no escaped tenant is "*"). prefix is
// yours, and is used as it is.
func KeyFor(prefix, tenant, name string) string {
	tag := url.QueryEscape(tenant)
	if tag == "" {
		tag = "*"
	}
	return prefix + ":{" + tag + "}:" + url.QueryEscape(name)
}
