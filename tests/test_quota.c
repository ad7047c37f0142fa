/*
 * Tests for the cgroup CPU quota in weft_cpu_count (base/quota.c): the
 * fault-injection table's open serves fake /proc/self/cgroup and
 * /proc/self/mountinfo files from a temporary directory, whose tree stands
 * for the cgroup file system (mountinfo mounts it there), and its
 * sched_getaffinity a mask of 4 CPUs. v2 and v1 quotas rounded up, a
 * parent's tighter quota, the mount's root field and escapes, hybrid
 * systems, files that are missing, empty, garbage or read a few bytes at a
 * time; spinning under a quota; and this machine, whose count must not
 * change.
 */
#include "base/base.h"
#include "wt.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/weft-quota-XXXXXX";

/* dir/name, in a static buffer. */
static const char *at(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Write dir/name (making its directories), or remove it when text is NULL. */
static void put(const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", at(name));
    if (!text) {
        WT_EQ(unlink(path), 0);
        return;
    }
    for (char *slash = path + strlen(dir) + 1; (slash = strchr(slash, '/')); slash++) {
        *slash = '\0';
        WT_CHECK(mkdir(path, 0700) == 0 || errno == EEXIST);
        *slash = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    WT_CHECK(fd >= 0);
    WT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int ncpus = 4;

static int affinity(pid_t pid, size_t size, cpu_set_t *set)
{
    (void)pid;
    CPU_ZERO_S(size, set);
    for (int cpu = 0; cpu < ncpus; cpu++)
        CPU_SET_S(cpu, size, set);
    return 0;
}

/* Which files are served a few bytes a read (partial_reads_are_joined). */
static bool in_pieces;

/* The file at path served through a SOCK_SEQPACKET socket pair: every
 * read returns one 3-byte message, as a slow file system might. */
static int pieces_of(const char *path)
{
    char text[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC), sv[2];
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    WT_CHECK(n >= 0 && n < (ssize_t)sizeof text);
    WT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    for (ssize_t i = 0, piece; i < n; i += piece) {
        piece = n - i < 3 ? n - i : 3;
        WT_EQ(write(sv[1], text + i, (size_t)piece), piece);
    }
    close(sv[1]); /* the end of the file */
    return sv[0];
}

static int fake_open(const char *path, int flags)
{
    if (strcmp(path, "/proc/self/cgroup") == 0)
        path = at("cgroup");
    else if (strcmp(path, "/proc/self/mountinfo") == 0)
        path = at("mountinfo");
    return in_pieces ? pieces_of(path) : open(path, flags);
}

static void setup(void)
{
    WT_CHECK(mkdtemp(dir) != NULL);
    weft__sys.open = fake_open;
    weft__sys.sched_getaffinity = affinity;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    weft__sys_reset();
    WT_EQ(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* A cgroup v2 "/app", its hierarchy mounted at dir/fs (the usual layout),
 * after a mount that is no cgroup's. */
static void v2_app(void)
{
    put("cgroup", "0::/app\n");
    char text[2048];
    snprintf(text, sizeof text,
             "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
             "41 22 0:38 / %s/fs rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
             dir);
    put("mountinfo", text);
}

WT_FAULT(quota_v2_rounds_up)
{
    setup();
    v2_app();
    put("fs/app/cpu.max", "150000 100000\n");
    WT_EQ(weft_cpu_count(), 2); /* 1.5 CPUs */
    put("fs/app/cpu.max", "50000 100000\n");
    WT_EQ(weft_cpu_count(), 1); /* never 0 */
    put("fs/app/cpu.max", "200000 100000\n");
    WT_EQ(weft_cpu_count(), 2);
    put("fs/app/cpu.max", "200001 100000\n");
    WT_EQ(weft_cpu_count(), 3);
    put("fs/app/cpu.max", "max 100000\n");
    WT_EQ(weft_cpu_count(), 4);
    /* The affinity mask, when it is the smaller. */
    put("fs/app/cpu.max", "350000 100000\n");
    ncpus = 2;
    WT_EQ(weft_cpu_count(), 2);
    ncpus = 4;
    WT_EQ(weft_cpu_count(), 4);
    put("fs/app/cpu.max", "150000 100000"); /* no newline */
    WT_EQ(weft_cpu_count(), 2);
    teardown();
}

/* A parent's quota binds its children: the tightest along the path, up to
 * the mount's top and no further. */
WT_FAULT(quota_v2_parent_binds_child)
{
    setup();
    v2_app();
    put("cgroup", "0::/a/b/c\n");
    put("fs/a/b/c/cpu.max", "300000 100000\n");
    put("fs/a/b/cpu.max", "max 100000\n");
    put("fs/a/cpu.max", "100000 100000\n");
    put("cpu.max", "10000 100000\n"); /* above the mount: not the cgroups' */
    WT_EQ(weft_cpu_count(), 1);
    put("fs/a/cpu.max", "max 100000\n");
    WT_EQ(weft_cpu_count(), 3);
    put("fs/cpu.max", "200000 100000\n"); /* the mount's top counts */
    WT_EQ(weft_cpu_count(), 2);
    teardown();
}

/* The mount shows the cgroup "/kube/pod" at its top (a container's own),
 * at a path with a space. Mounts of other cgroups come first, and their
 * trees have tight quotas where a path built from the wrong mount would
 * land: ignoring the root field, or matching "/kube/po" as a prefix. */
WT_FAULT(quota_v2_mount_root_and_escapes)
{
    setup();
    put("cgroup", "0::/kube/pod/ctr\n");
    char text[2048];
    snprintf(text, sizeof text,
             "30 1 0:38 /other %s/wrong rw - cgroup2 cgroup2 rw\n"
             "31 1 0:38 /kube/po %s/po rw - cgroup2 cgroup2 rw\n"
             "32 1 0:38 /kube/pod %s/my\\040fs rw shared:4 master:1 - cgroup2 cgroup2 rw\n",
             dir, dir, dir);
    put("mountinfo", text);
    put("wrong/kube/pod/ctr/cpu.max", "50000 100000\n");
    put("pod/ctr/cpu.max", "50000 100000\n");
    put("my fs/kube/pod/ctr/cpu.max", "50000 100000\n");
    put("my fs/ctr/cpu.max", "200000 100000\n");
    put("my fs/cpu.max", "max 100000\n");
    WT_EQ(weft_cpu_count(), 2);
    teardown();
}

/* cgroup v1 on a hybrid system: the hierarchy with the cpu controller
 * (not cpuacct's alone), not the v2 one beside it. */
WT_FAULT(quota_v1)
{
    setup();
    put("cgroup", "12:cpuacct:/grp/sub\n"
                  "4:cpu,cpuacct:/grp/sub\n"
                  "1:name=systemd:/grp/sub\n"
                  "0::/grp/sub\n");
    char text[2048];
    snprintf(text, sizeof text,
             "33 31 0:30 / %s/acct rw - cgroup cgroup rw,cpuacct\n"
             "32 31 0:29 / %s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
             "41 31 0:38 / %s/unified rw - cgroup2 cgroup2 rw\n",
             dir, dir, dir);
    put("mountinfo", text);
    put("acct/grp/sub/cpu.cfs_quota_us", "50000\n");
    put("acct/grp/sub/cpu.cfs_period_us", "100000\n");
    put("unified/grp/sub/cpu.max", "50000 100000\n");
    put("cpu,cpuacct/grp/sub/cpu.cfs_quota_us", "-1\n");
    put("cpu,cpuacct/grp/sub/cpu.cfs_period_us", "100000\n");
    put("cpu,cpuacct/grp/cpu.cfs_quota_us", "200000\n");
    put("cpu,cpuacct/grp/cpu.cfs_period_us", "100000\n");
    put("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    WT_EQ(weft_cpu_count(), 2);
    put("cpu,cpuacct/grp/cpu.cfs_quota_us", "-1\n");
    WT_EQ(weft_cpu_count(), 4);
    put("cpu,cpuacct/grp/sub/cpu.cfs_quota_us", "150000\n");
    WT_EQ(weft_cpu_count(), 2);
    put("cpu,cpuacct/grp/sub/cpu.cfs_period_us", NULL); /* a quota over nothing */
    WT_EQ(weft_cpu_count(), 4);
    teardown();
}

/* Whatever cannot be read or parsed is no limit, and leaves no descriptor
 * open. */
WT_FAULT(quota_unreadable_is_no_limit)
{
    setup();
    int fds = wt_count_fds();
    v2_app();
    const char *bad[] = {"",
                         "garbage\n",
                         "150000\n",
                         "150000 100000 5\n",
                         "-5 100000\n",
                         "150000 0\n",
                         "150000  100000\n",
                         "99999999999999999999 1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        put("fs/app/cpu.max", bad[i]);
        WT_EQ(weft_cpu_count(), 4);
    }
    put("fs/app/cpu.max", NULL); /* missing */
    WT_EQ(weft_cpu_count(), 4);
    put("fs/app/cpu.max", "150000 100000\n");
    WT_EQ(weft_cpu_count(), 2); /* the rest of the layout is sound */
    const char *bad_cgroup[] = {"", "garbage\n", "0:/app\n", "0::app\n", "1:cpuset:/app\n"};
    for (size_t i = 0; i < sizeof bad_cgroup / sizeof *bad_cgroup; i++) {
        put("cgroup", bad_cgroup[i]);
        WT_EQ(weft_cpu_count(), 4);
    }
    put("cgroup", NULL);
    WT_EQ(weft_cpu_count(), 4);
    put("cgroup", "0::/app\n");
    const char *bad_mounts[] = {"", "garbage\n", "41 22 0:38 / /x\n",
                                "41 22 0:38 / /x rw - cgroup2\n",
                                "41 22 0:38 / /bad\\04 rw - cgroup2 cgroup2 rw\n"};
    for (size_t i = 0; i < sizeof bad_mounts / sizeof *bad_mounts; i++) {
        put("mountinfo", bad_mounts[i]);
        WT_EQ(weft_cpu_count(), 4);
    }
    put("mountinfo", NULL);
    WT_EQ(weft_cpu_count(), 4);
    WT_EQ(wt_count_fds(), fds);
    teardown();
}

/* Lines longer than the reader's buffer are skipped whole, never read as
 * shorter lines, and the lines after them are still read. The long line
 * here is a tmpfs mount whose options end, at lengths where a buffer might
 * run out, in the text of a cgroup2 mount line whose tree has a tight quota. */
WT_FAULT(quota_long_lines_are_skipped)
{
    setup();
    v2_app();
    put("fs/app/cpu.max", "150000 100000\n");
    put("tight/app/cpu.max", "50000 100000\n");
    static char text[3 * PATH_MAX];
    int cuts[] = {1023, 1024, 2047, 2048, 4095, 4096, 8191, 8192};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        int pad = cuts[i] - (int)strlen("1 1 0:1 / / rw - tmpfs tmpfs ");
        snprintf(text, sizeof text,
                 "1 1 0:1 / /%0*d rw - tmpfs tmpfs 41 22 0:38 / %s/tight rw - cgroup2 cgroup2 rw\n"
                 "41 22 0:38 / %s/fs rw - cgroup2 cgroup2 rw\n",
                 pad, 0, dir, dir);
        put("mountinfo", text);
        WT_EQ(weft_cpu_count(), 2);
    }
    snprintf(text, sizeof text, "1:name=x:/%0*d\n0::/app\n", 2 * PATH_MAX, 0);
    put("cgroup", text);
    WT_EQ(weft_cpu_count(), 2);
    teardown();
}

/* A cgroup whose directory would pass PATH_MAX is no limit. */
WT_FAULT(quota_paths_past_path_max_are_no_limit)
{
    setup();
    v2_app();
    static char text[PATH_MAX];
    snprintf(text, sizeof text, "0::/%0*d\n", PATH_MAX - 20, 0);
    put("cgroup", text);
    WT_EQ(weft_cpu_count(), 4);
    teardown();
}

/* Files that come a few bytes a read are read whole. */
WT_FAULT(quota_partial_reads_are_joined)
{
    setup();
    v2_app();
    put("cgroup", "1:name=systemd:/\n0::/app\n");
    put("fs/app/cpu.max", "150000 1000000\n");
    put("fs/cpu.max", "2500000 1000000\n");
    in_pieces = true;
    WT_EQ(weft_cpu_count(), 1); /* 0.15 CPUs, under the top's 2.5 */
    put("fs/app/cpu.max", "max 1000000\n");
    WT_EQ(weft_cpu_count(), 3);
    in_pieces = false;
    teardown();
}

/* Spinning needs 2 whole CPUs of quota: 1.5 counts as 2 CPUs for pools,
 * but not for spinning. */
WT_FAULT(quota_under_two_cpus_never_spins)
{
    setup();
    v2_app();
    put("fs/app/cpu.max", "200000 100000\n");
    WT_CHECK(weft__quota_lets_spin(fake_open));
    put("fs/app/cpu.max", "150000 100000\n");
    WT_CHECK(!weft__quota_lets_spin(fake_open));
    put("fs/app/cpu.max", "50000 100000\n");
    WT_CHECK(!weft__quota_lets_spin(fake_open));
    put("fs/app/cpu.max", "max 100000\n");
    WT_CHECK(weft__quota_lets_spin(fake_open));
    teardown();
}

/* This machine: with no quota tighter than its mask, the count is the
 * mask's, as before. */
WT_CASE(quota_leaves_this_machine_alone)
{
    cpu_set_t set;
    WT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    double quota = weft__cpu_quota(weft__sys.open);
    if (quota < CPU_COUNT(&set))
        wt_skip("this machine's cgroup has a CPU quota");
    WT_EQ(weft_cpu_count(), CPU_COUNT(&set));
    WT_EQ(weft__spin_pays(), CPU_COUNT(&set) > 1 && quota >= 2);
}
