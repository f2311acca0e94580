# The restricted pack's container rules, written in Rego for opa-docker-authz, to
# compare against Moorage's native rules in bench/policy.py. Same checks, same
# normalisation of capabilities; canonical field spellings only (the native rules
# also fold case).
package docker.authz

default allow := false

allow if count(deny) == 0

hc := object.get(input.Body, "HostConfig", {})

caps_add contains c if {
	some raw in object.get(hc, "CapAdd", [])
	c := trim_prefix(upper(raw), "CAP_")
}

caps_drop contains c if {
	some raw in object.get(hc, "CapDrop", [])
	c := trim_prefix(upper(raw), "CAP_")
}

security_opts contains o if {
	some raw in object.get(hc, "SecurityOpt", [])
	o := lower(replace(replace(raw, ":", "="), " ", ""))
}

safe_sysctls := {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range"}

docker_sockets := ["/var/run/docker.sock", "/run/docker.sock", "/var/run/docker", "/run/docker"]

deny contains "runtime.privileged" if hc.Privileged == true

deny contains sprintf("runtime.capabilities %s", [c]) if {
	some c in caps_add
	c != "NET_BIND_SERVICE"
}

deny contains "runtime.capabilities.drop-all" if not caps_drop.ALL

deny contains sprintf("runtime.host-namespace %s", [f]) if {
	some f in ["PidMode", "IpcMode", "UTSMode", "NetworkMode", "UsernsMode", "CgroupnsMode"]
	lower(object.get(hc, f, "")) == "host"
}

host_paths contains src if {
	some b in object.get(hc, "Binds", [])
	src := split(b, ":")[0]
	startswith(src, "/")
}

host_paths contains src if {
	some m in object.get(hc, "Mounts", [])
	lower(object.get(m, "Type", "")) == "bind"
	src := object.get(m, "Source", "")
}

deny contains sprintf("runtime.docker-socket %s", [p]) if {
	some p in host_paths
	some s in docker_sockets
	startswith(p, s)
}

deny contains sprintf("runtime.host-path %s", [p]) if some p in host_paths

deny contains "runtime.devices" if count(object.get(hc, "Devices", [])) > 0

deny contains "runtime.devices" if count(object.get(hc, "DeviceCgroupRules", [])) > 0

deny contains sprintf("runtime.unconfined %s", [o]) if {
	some o in security_opts
	o in {"seccomp=unconfined", "apparmor=unconfined", "label=disable"}
}

nnp if {
	some o in security_opts
	o in {"no-new-privileges", "no-new-privileges=true", "no-new-privileges=1"}
}

deny contains "runtime.no-new-privileges" if not nnp

deny contains "runtime.non-root" if {
	name := trim_space(split(object.get(input.Body, "User", ""), ":")[0])
	name in {"", "root", "0"}
}

deny contains "runtime.read-only-rootfs" if not object.get(hc, "ReadonlyRootfs", false)

deny contains sprintf("runtime.sysctls %s", [k]) if {
	some k, _ in object.get(hc, "Sysctls", {})
	not safe_sysctls[k]
}
