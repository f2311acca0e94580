"""Regenerate cli_bodies.json: the request bodies real docker CLIs build, captured
with ``moorage policy check``'s dry-run endpoint (nothing runs). ``COMMANDS`` are
ordinary workloads baseline must allow; ``REFUSED`` are escapes, each with the rule
that must refuse it.

    python tests/unit/policy/data/make_cli_bodies.py
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from moorage.policy.dryrun import dry_run

CLIS = {"cli-28": "/usr/local/bin/docker", "cli-20.10": "/usr/bin/docker"}
COMMANDS = [
    "run busybox",
    "run -d --name web -p 127.0.0.1:8080:80 busybox httpd -f",
    "run -p 8080:80 -p 9000 busybox",
    "run -v named:/data busybox",
    "run -v /data busybox",
    "run -v named:/data:ro,nocopy busybox",
    "run --mount type=volume,src=cache,dst=/c busybox",
    "run --mount type=volume,dst=/anon busybox",
    "run --mount type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770 busybox",
    "run --tmpfs /run --tmpfs /tmp:rw,noexec,nosuid,size=64m busybox",
    "run --tmpfs /run:rw,exec,mode=1777,uid=1000,gid=1000 busybox",
    "run --cap-add NET_BIND_SERVICE --cap-drop ALL busybox",
    "run --cap-add chown --cap-add CAP_SETUID --cap-drop NET_RAW busybox",
    "run --security-opt no-new-privileges busybox",
    "run --security-opt no-new-privileges:true --security-opt apparmor=docker-default busybox",
    "run --security-opt label=level:s0:c100,c200 busybox",
    "run --read-only --user 1000:1000 busybox",
    "run --memory 256m --cpus 1 --pids-limit 100 busybox",
    "run --restart unless-stopped busybox",
    "run --network none busybox",
    "run --network mynet --network-alias web busybox",
    "run --log-opt max-size=10m --log-opt max-file=3 busybox",
    "run --log-driver local busybox",
    "run --log-driver none busybox",
    "run --init --ulimit nofile=1024:2048 --shm-size 128m busybox",
    "run --sysctl net.ipv4.ip_unprivileged_port_start=0 busybox",
    "run --ipc shareable --cgroupns private busybox",
    "run --label a=b --hostname h --add-host x:127.0.0.1 --dns 127.0.0.1 busybox",
    "run --health-cmd true --health-interval 5s busybox",
    "run --oom-score-adj 500 busybox",
    "run --runtime runc busybox",
    "run -w /tmp --entrypoint sh -e A=1 busybox -c true",
    "create --name c1 busybox",
    "volume create v1",
    "volume create --driver local v2",
    "volume create --opt type=tmpfs --opt device=tmpfs --opt o=size=100m,uid=1000 v3",
    "volume create --label a=b v4",
    "service create busybox",
    "service create --name s --replicas 2 --mount type=volume,src=v,dst=/d --cap-add CAP_NET_BIND_SERVICE "
    "--read-only --user 1000 busybox",
    "service create --mount type=tmpfs,dst=/t --sysctl net.ipv4.tcp_syncookies=1 busybox",
    "service create --log-driver json-file --log-opt max-size=10m --limit-memory 128m busybox",
    "service create --cap-drop ALL --cap-add NET_BIND_SERVICE --init busybox",
]

HERE = Path(__file__).parent
REFUSED = [
    ("run --security-opt seccomp=unconfined busybox", "runtime.unconfined"),
    ("run --security-opt seccomp:unconfined busybox", "runtime.unconfined"),
    ("run --security-opt apparmor=unconfined busybox", "runtime.unconfined"),
    ("run --security-opt label=disable busybox", "runtime.unconfined"),
    ("run --security-opt systempaths=unconfined busybox", "runtime.masked-paths"),
    (f"run --security-opt seccomp={HERE}/allow-all-seccomp.json busybox", "runtime.seccomp-profile"),
    ("run --security-opt label=type:spc_t busybox", "runtime.selinux-label"),
    ("run --security-opt apparmor=my-profile busybox", "runtime.apparmor-profile"),
    ("run --cap-add ALL busybox", "runtime.capabilities"),
    ("run --cap-add sys_admin busybox", "runtime.capabilities"),
    ("run --privileged busybox", "runtime.privileged"),
    ("run --device /dev/sda busybox", "runtime.devices"),
    ("run --gpus all busybox", "runtime.devices"),
    ("run --device-cgroup-rule 'b 8:* rmw' busybox", "runtime.devices"),
    ("run -v /etc:/host/etc busybox", "runtime.host-path"),
    ("run -v /var/run/docker.sock:/s busybox", "runtime.docker-socket"),
    (
        "run --mount type=volume,src=x,dst=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc busybox",
        "runtime.host-path",
    ),
    (
        "run --mount type=volume,src=x,dst=/x,volume-opt=type=ext4,volume-opt=device=/dev/sda1 busybox",
        "runtime.volume-options",
    ),
    ("run --mount type=volume,src=x,dst=/x,volume-driver=convoy busybox", "runtime.volume-driver"),
    ("run --volume-driver convoy -v x:/x busybox", "runtime.volume-driver"),
    ("run --cgroup-parent / busybox", "runtime.cgroup"),
    ("run --runtime kata busybox", "runtime.oci-runtime"),
    ("run --oom-score-adj -1000 busybox", "runtime.oom-score"),
    ("run --userns host busybox", "runtime.host-namespace"),
    ("run --pid host busybox", "runtime.host-namespace"),
    ("run --log-driver syslog --log-opt syslog-address=udp://127.0.0.1:514 busybox", "runtime.log-driver"),
    ("run --log-opt syslog-address=unix:///dev/log busybox", "runtime.log-driver"),
    ("run --sysctl net.ipv4.ip_forward=1 busybox", "runtime.sysctls"),
    ("run --tmpfs /x:bind busybox", "runtime.mount"),
    ("volume create --opt type=ext4 --opt device=/dev/sda1 v", "runtime.volume-options"),
    ("volume create --opt type=none --opt o=bind --opt device=/etc v", "runtime.host-path"),
    (
        "volume create --opt type=nfs --opt o=addr=127.0.0.1,rw --opt device=:/export v",
        "runtime.volume-options",
    ),
    ("volume create --opt type=tmpfs --opt device=tmpfs --opt o=size=1m,bind v", "runtime.volume-options"),
    ("volume create --driver convoy v", "runtime.volume-driver"),
    (
        "service create --mount type=volume,src=x,dst=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/ "
        "busybox",
        "runtime.host-path",
    ),
    ("service create --mount type=bind,src=/,dst=/h busybox", "runtime.host-path"),
    ("service create --cap-add ALL busybox", "runtime.capabilities"),
    (
        "service create --log-driver gelf --log-opt gelf-address=udp://127.0.0.1:12201 busybox",
        "runtime.log-driver",
    ),
    ("service create --isolation hyperv busybox", "runtime.oci-runtime"),
    ("service create --sysctl kernel.core_pattern=x busybox", "runtime.sysctls"),
]


def main() -> None:
    out = []
    cases = [(c, None) for c in COMMANDS] + REFUSED
    for cli, binary in CLIS.items():
        for command, rule in cases:
            try:
                captured = dry_run([binary, *shlex.split(command)])
            except Exception as exc:  # some flags are newer than the 20.10 CLI
                print(f"{cli}: {command}: {exc}")
                continue
            for kind, _path, _query, body in captured:
                out.append(
                    {
                        "cli": cli,
                        "command": f"docker {command}".replace(str(HERE) + "/", ""),
                        "kind": kind,
                        "body": body,
                        "refused_by": rule,
                    }
                )
    target = Path(__file__).with_name("cli_bodies.json")
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(out)} bodies -> {target}")


if __name__ == "__main__":
    main()
