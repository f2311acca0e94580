"""The runtime rules of the built-in packs (baseline, restricted), documented."""

from __future__ import annotations

from moorage.policy.rules.base import RuleDoc

__all__ = [
    "RUNTIME_RULES",
]

RUNTIME_RULES = (
    RuleDoc("runtime.privileged", "runtime", "baseline, restricted",
            "The workload must not run privileged.",
            "Privileged mode gives every capability, every device and no confinement: root in the "
            "container is root on the host.",
            "HostConfig.Privileged; exec Privileged; (services can't ask for it)",
            "Remove --privileged and add only the capability the workload needs."),
    RuleDoc("runtime.capabilities", "runtime", "baseline, restricted",
            "Added capabilities must be in the allowed set: Docker's default set for baseline, only "
            "NET_BIND_SERVICE for restricted. ALL is never allowed. Any spelling counts: SYS_ADMIN, "
            "CAP_SYS_ADMIN, sys_admin, as the engine upper-cases them. HostConfig.Capabilities (API 1.40), "
            "which replaces the default set, is held to the same set.",
            "Capabilities such as SYS_ADMIN, SYS_PTRACE, SYS_MODULE or NET_ADMIN reach past the "
            "container's namespaces.",
            "HostConfig.CapAdd; HostConfig.Capabilities; TaskTemplate.ContainerSpec.CapabilityAdd",
            "Remove the --cap-add."),
    RuleDoc("runtime.capabilities.drop-all", "runtime", "restricted",
            "Capabilities must be dropped: CapDrop must contain ALL.",
            "Least privilege: a process that needs no capability should hold none.",
            "HostConfig.CapDrop; TaskTemplate.ContainerSpec.CapabilityDrop",
            "Add --cap-drop ALL (and --cap-add NET_BIND_SERVICE if it binds a low port)."),
    RuleDoc("runtime.host-namespace", "runtime", "baseline, restricted",
            "No host PID, IPC, UTS, network, user or cgroup namespace. The modes are an allow-list: "
            "PidMode empty or container:NAME; IpcMode empty, none, private, shareable or container:NAME; "
            "UTSMode and UsernsMode empty; CgroupnsMode empty or private; a build's networkmode not "
            "host or container:NAME.",
            "Sharing a host namespace shows and reaches the host's processes, IPC, hostname, "
            "interfaces or cgroups.",
            "HostConfig.PidMode, IpcMode, UTSMode, NetworkMode, UsernsMode, CgroupnsMode; build networkmode",
            "Remove --pid/--ipc/--uts/--network/--userns/--cgroupns host."),
    RuleDoc("runtime.host-path", "runtime", "baseline, restricted",
            "No host path is mounted: bind mounts through Binds, Mounts (type bind), a service's "
            "Mounts, or a local volume (created, or inline in a mount's DriverConfig) with o=bind, "
            "o=rbind or type=none and a device path.",
            "A host path lets the workload read or change the host's files (/, /etc, /root).",
            "HostConfig.Binds; HostConfig.Mounts[].Source; TaskTemplate.ContainerSpec.Mounts[].Source; "
            "volume DriverOpts.device; Mounts[].VolumeOptions.DriverConfig.Options.device",
            "Use a named volume."),
    RuleDoc("runtime.docker-socket", "runtime", "baseline, restricted",
            "The Docker socket (or /run, /var/run) is never mounted.",
            "Whoever holds the Docker socket controls the host, and bypasses Moorage.",
            "as runtime.host-path",
            "Talk to the engine through Moorage, never through its socket."),
    RuleDoc("runtime.devices", "runtime", "baseline, restricted",
            "No host devices, no device cgroup rules and no device requests (GPUs).",
            "A device node (a disk, /dev/mem, a GPU) is the host's hardware.",
            "HostConfig.Devices; HostConfig.DeviceCgroupRules; HostConfig.DeviceRequests",
            "Remove --device / --device-cgroup-rule / --gpus."),
    RuleDoc("runtime.unconfined", "runtime", "baseline, restricted",
            "seccomp and AppArmor stay on; SELinux labelling stays on; the system paths stay masked. "
            "Both separators count (seccomp=unconfined, seccomp:unconfined), and the bare word disable, "
            "which the engine reads as label=disable.",
            "seccomp=unconfined, apparmor=unconfined, label=disable and systempaths=unconfined turn off "
            "kernel confinement.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode, AppArmor.Mode, "
            "SELinuxContext.Disable",
            "Remove the --security-opt."),
    RuleDoc("runtime.security-opt", "runtime", "baseline, restricted",
            "Every security option is one baseline knows: no-new-privileges[=BOOL], apparmor=, seccomp=, "
            "label=. Keys are exact, as the engine reads them; anything else (credentialspec, a key in "
            "another case, a malformed entry) is refused.",
            "An allow-list: an option nobody has reviewed is refused rather than passed to the engine.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.CredentialSpec",
            "Use only no-new-privileges, apparmor=docker-default, label=... or seccomp=PROFILE."),
    RuleDoc("runtime.seccomp-profile", "runtime", "baseline, restricted",
            "seccomp uses the engine's default profile, or a custom profile whose digest the policy "
            "lists in runtime.seccompProfiles (sha256 of the profile's JSON with insignificant "
            "whitespace removed, as the docker CLI sends it).",
            "A custom profile can allow every system call (defaultAction SCMP_ACT_ALLOW) and so turn "
            "seccomp off while looking confined.",
            "HostConfig.SecurityOpt seccomp=; TaskTemplate.ContainerSpec.Privileges.Seccomp",
            "Use the default profile, or ask the policy owner to list the profile's digest."),
    RuleDoc("runtime.apparmor-profile", "runtime", "baseline, restricted",
            "AppArmor uses docker-default (or the default) or a profile the policy lists in "
            "runtime.appArmorProfiles.",
            "A host profile may be unconfined in all but name.",
            "HostConfig.SecurityOpt apparmor=; TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode",
            "Use apparmor=docker-default."),
    RuleDoc("runtime.selinux-label", "runtime", "baseline, restricted",
            "SELinux label options are user:, role:, level:, type: or filetype:, and a type is a "
            "confined container type (container_t, container_init_t, svirt_lxc_net_t, container_file_t, "
            "svirt_sandbox_file_t) or one the policy lists in runtime.selinuxTypes.",
            "Types such as spc_t or unconfined_t run the container unconfined on SELinux hosts.",
            "HostConfig.SecurityOpt label=; TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Type",
            "Use a level (label=level:s0:c1,c2), or the container_t type."),
    RuleDoc("runtime.masked-paths", "runtime", "baseline, restricted",
            "MaskedPaths and ReadonlyPaths are absent or null (the engine's defaults), or lists that keep "
            "every default path.",
            "An empty list unmasks /proc/kcore, /proc/keys, /sys/firmware, and makes /proc/sys and "
            "/proc/sysrq-trigger writable: docker run --security-opt systempaths=unconfined.",
            "HostConfig.MaskedPaths; HostConfig.ReadonlyPaths",
            "Remove the lists (and --security-opt systempaths=unconfined)."),
    RuleDoc("runtime.mount", "runtime", "baseline, restricted",
            "A mount is of type volume or tmpfs (bind is runtime.host-path). npipe, cluster, image and "
            "unknown types are refused, as are bind options on a volume or tmpfs, and tmpfs options "
            "outside size, mode, uid, gid, nr_inodes, nr_blocks, huge and the plain mount flags.",
            "An allow-list: a mount type or option nobody has reviewed may reach the host.",
            "HostConfig.Mounts[].Type, BindOptions, TmpfsOptions; HostConfig.Tmpfs; "
            "TaskTemplate.ContainerSpec.Mounts[]",
            "Use --mount type=volume or type=tmpfs, or --tmpfs with size/mode options."),
    RuleDoc("runtime.volume-driver", "runtime", "baseline, restricted",
            "Volumes use the local driver: a volume's Driver, a container's VolumeDriver and a mount's "
            "DriverConfig.Name are empty or local. Cluster (CSI) volumes are refused.",
            "A volume plugin runs with the host's privileges and mounts whatever its options say.",
            "volume Driver, ClusterVolumeSpec; HostConfig.VolumeDriver; "
            "Mounts[].VolumeOptions.DriverConfig.Name",
            "Use the local driver."),
    RuleDoc("runtime.volume-options", "runtime", "baseline, restricted",
            "Local volume options are none, size=SIZE, or a tmpfs: type=tmpfs, device=tmpfs, o= only "
            "size, mode, uid, gid, nr_inodes, ro, rw, noexec, nosuid, nodev, noatime. Keys are exact, "
            "as the local driver reads them.",
            "The local driver runs mount(2) on the host with type, device and o: any disk "
            "(type=ext4,device=/dev/sda1), any host path (o=bind) or network share (type=nfs).",
            "volume DriverOpts; Mounts[].VolumeOptions.DriverConfig.Options (containers and services)",
            "Use a named volume without options, or a tmpfs volume."),
    RuleDoc("runtime.cgroup", "runtime", "baseline, restricted",
            "CgroupParent and Cgroup are empty (a build's cgroupparent too).",
            "A cgroup parent of the caller's choosing escapes the engine's limits and accounting; "
            "Cgroup=container:ID joins another container's cgroup.",
            "HostConfig.CgroupParent; HostConfig.Cgroup; build cgroupparent",
            "Remove --cgroup-parent."),
    RuleDoc("runtime.oci-runtime", "runtime", "baseline, restricted",
            "The OCI runtime is the default, runc or io.containerd.runc.v2 (or one the policy lists in "
            "runtime.runtimes); isolation is the default; no annotations; a service's task is a "
            "container, never a plugin.",
            "Another runtime, an annotation read by the runtime or its cgroup manager, or a plugin "
            "service changes how the host runs the workload.",
            "HostConfig.Runtime, Isolation, Annotations; TaskTemplate.Runtime, PluginSpec, "
            "ContainerSpec.Isolation; build isolation",
            "Remove --runtime / --isolation / --annotation."),
    RuleDoc("runtime.oom-score", "runtime", "baseline, restricted",
            "The OOM score adjustment is not negative.",
            "A negative score makes the kernel kill the host's own processes before the workload.",
            "HostConfig.OomScoreAdj; TaskTemplate.ContainerSpec.OomScoreAdj",
            "Remove --oom-score-adj or use 0 to 1000."),
    RuleDoc("runtime.log-driver", "runtime", "baseline, restricted",
            "The log driver is the daemon's default, json-file, local, journald or none (or one the "
            "policy lists in runtime.logDrivers), with only the shared options: max-size, max-file, "
            "compress, labels, labels-regex, env, env-regex, tag, mode, max-buffer-size.",
            "The engine runs log drivers on the host: syslog, gelf, fluentd and the like connect "
            "from there to any address or socket the options name.",
            "HostConfig.LogConfig; TaskTemplate.LogDriver",
            "Use the default log driver, with --log-opt max-size/max-file."),
    RuleDoc("runtime.sysctls", "runtime", "baseline, restricted",
            "Only the namespaced sysctls Kubernetes calls safe may be set.",
            "Other sysctls change the host kernel, or are not isolated per container.",
            "HostConfig.Sysctls; TaskTemplate.ContainerSpec.Sysctls",
            "Remove the --sysctl."),
    RuleDoc("runtime.no-new-privileges", "runtime", "restricted",
            "no-new-privileges is set.",
            "Without it a setuid binary in the image can gain privileges.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges",
            "Add --security-opt no-new-privileges (or declare the noNewPrivileges mutation)."),
    RuleDoc("runtime.non-root", "runtime", "restricted",
            "The workload runs as a non-zero uid. An exec may not ask for root.",
            "Root in a container is one kernel bug away from root on the host.",
            "User; exec User; TaskTemplate.ContainerSpec.User",
            "Set --user 1000 (or a USER in the image and --user with it)."),
    RuleDoc("runtime.read-only-rootfs", "runtime", "restricted",
            "The root filesystem is read-only.",
            "A writable root lets an intruder change binaries the workload runs.",
            "HostConfig.ReadonlyRootfs; TaskTemplate.ContainerSpec.ReadOnly",
            "Add --read-only, with --tmpfs for the paths that must be written."),
    RuleDoc("runtime.update-field", "runtime", "baseline, restricted",
            "docker update changes only what the engine applies: CpuShares, Memory, NanoCpus, CpuPeriod, "
            "CpuQuota, CpuRealtimePeriod, CpuRealtimeRuntime, CpusetCpus, CpusetMems, MemorySwap, "
            "MemoryReservation, KernelMemory, BlkioWeight, PidsLimit and RestartPolicy. Any other field "
            "set to a non-zero value is refused.",
            "The engines ignore the other fields today; a newer engine that starts honouring one "
            "(Devices, CgroupParent, Ulimits...) would change a running container past the create checks.",
            "container update body",
            "Recreate the container to change anything but its limits and restart policy."),
    RuleDoc("runtime.unknown-operation", "runtime", "baseline, restricted",
            "The operation is one the packs know: read by them, or known to carry nothing that reaches "
            "the host, or a read. Any other, including one Moorage can't classify, is refused, for "
            "administrators too.",
            "An allow-list of operations: an endpoint nobody has modelled is not passed.",
            "(operation)",
            "Use a documented Engine API endpoint; if this one is needed, ask for it to be modelled."),
)  # fmt: skip
"""The ``runtime.*`` rules, in the order ``moorage policy explain`` lists them."""
