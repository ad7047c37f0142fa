/*
 * weft__cpu_quota: how many CPUs the cgroup CPU quota lets this process use,
 * so that weft_cpu_count (cpu.c), and through it the pools' default sizes and
 * the decision to spin, fit a container as Go's GOMAXPROCS (1.25) and the
 * JVM's container support do. Python's os.process_cpu_count does not look.
 *
 * A cgroup may run `quota` microseconds of CPU time each `period`: that is
 * quota/period CPUs. Every ancestor's quota binds its descendants as well,
 * so the answer is the smallest along the path from the process's cgroup up
 * to the top of the mount that shows it (cgroups above that are out of
 * sight). Where there is no quota, or anything cannot be read or parsed (no
 * /proc, no cgroup file system, odd contents, a path past PATH_MAX), the
 * answer is no limit: a count of CPUs is advice, never a reason to fail. A
 * level whose file is missing adds no limit (v2's root cgroup has no
 * cpu.max) and the others still count.
 *
 * Where the files are:
 *   - /proc/self/cgroup names the process's cgroup in each hierarchy, one
 *     "id:controllers:path" a line. A v1 hierarchy with the cpu controller
 *     is where the quota is, hybrid systems included (a controller serves
 *     one hierarchy at a time): cpu.cfs_quota_us (-1: none) over
 *     cpu.cfs_period_us. Otherwise the v2 line, "0::path", and its cpu.max:
 *     "max 100000" is none, "150000 100000" 1.5 CPUs.
 *   - /proc/self/mountinfo says where that hierarchy is mounted (type
 *     cgroup2, or cgroup with "cpu" among its super options) and which of
 *     its cgroups the mount shows at its top, the root field: "/" usually,
 *     a container's own cgroup where its runtime mounts only that. Both
 *     paths are seen from the process's cgroup namespace, so the directory
 *     is the mount point plus the cgroup's path less the root; a cgroup
 *     outside the root is not in that mount, and another is looked for.
 *     Paths there escape spaces and the like as "\040".
 *
 * Files are read with read() through one line buffer, no stdio and no
 * allocation, all on the caller's stack (about 8 KiB): cpu.c's spin
 * decision runs this in whichever thread first spins. A line longer than
 * the buffer is skipped whole; no cgroup or cgroup mount line that long is
 * expected, and skipping one only ever loses a limit. open_file opens the
 * files: weft__sys.open, which tests point at fake ones, or the C
 * library's open where the table must not be read.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

typedef int (*open_fn)(const char *path, int flags);

/* A file read line by line: buf[start, end) is read and not yet returned. */
struct lines {
    int fd;
    size_t start, end;
    char buf[PATH_MAX];
};

static bool lines_open(struct lines *r, open_fn open_file, const char *path)
{
    r->start = r->end = 0;
    r->fd = open_file(path, O_RDONLY | O_CLOEXEC);
    return r->fd >= 0;
}

/* Read on after buf[end], keeping a byte for a closing NUL: the bytes read,
 * 0 at the end of the file, -1 on an error. */
static ssize_t fill(struct lines *r)
{
    ssize_t n;
    do
        n = read(r->fd, r->buf + r->end, sizeof r->buf - 1 - r->end);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        r->end += (size_t)n;
    return n;
}

/* The next line, NUL-terminated, without its newline; NULL at the end of
 * the file or on a read error (a line cut short by an error could read as
 * a smaller number). A line that does not fit in the buffer is skipped. */
static char *next_line(struct lines *r)
{
    for (bool skipping = false;;) {
        char *line = r->buf + r->start;
        char *nl = memchr(line, '\n', r->end - r->start);
        if (nl) {
            *nl = '\0';
            r->start = (size_t)(nl + 1 - r->buf);
            if (!skipping)
                return line;
            skipping = false;
            continue;
        }
        /* Part of a line: moved to the front, or dropped if it fills all. */
        skipping |= r->start == 0 && r->end == sizeof r->buf - 1;
        r->end = skipping ? 0 : r->end - r->start;
        memmove(r->buf, line, r->end);
        r->start = 0;
        ssize_t n = fill(r);
        if (n < 0 || (n == 0 && (skipping || r->end == 0)))
            return NULL;
        if (n == 0) { /* the last line, with no newline */
            r->buf[r->end] = '\0';
            r->start = r->end;
            return r->buf;
        }
    }
}

/* The next space-separated field of *s, NUL-terminated; NULL when none is
 * left, and from then on. */
static char *field(char **s)
{
    char *f = *s, *space = f ? strchr(f, ' ') : NULL;
    if (space)
        *space = '\0';
    *s = space ? space + 1 : NULL;
    return f;
}

/* Whether comma-separated `list` holds `word` ("cpu" is not "cpuacct"). */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (;; list++) {
        if (strncmp(list, word, n) == 0 && (list[n] == ',' || list[n] == '\0'))
            return true;
        if (!(list = strchr(list, ',')))
            return false;
    }
}

/* mountinfo's octal escapes ("\040" a space) undone in place; false for
 * one that is malformed. */
static bool unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s != '\\') {
            *out++ = *s;
            continue;
        }
        for (int i = 1; i <= 3; i++)
            if (s[i] < '0' || s[i] > '7')
                return false;
        *out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
        s += 3;
    }
    *out = '\0';
    return true;
}

/* A decimal number at s, returning what follows it; NULL if there is none
 * (a sign, "max") or it is too large to be a quota. */
static const char *number(const char *s, uint64_t *out)
{
    const char *p = s;
    for (*out = 0; *p >= '0' && *p <= '9' && *out < UINT64_MAX / 16; p++)
        *out = *out * 10 + (uint64_t)(*p - '0');
    return p == s || (*p >= '0' && *p <= '9') ? NULL : p;
}

/* The first line of file `name` (with its slash) in the directory
 * path[0, len); path has room for the longest name after len. */
static const char *first_line(struct lines *r, open_fn open_file, char *path, size_t len,
                              const char *name)
{
    strcpy(path + len, name);
    if (!lines_open(r, open_file, path))
        return NULL;
    const char *line = next_line(r);
    close(r->fd);
    return line;
}

/* The number alone on the first line of file `name`. */
static bool number_file(struct lines *r, open_fn open_file, char *path, size_t len,
                        const char *name, uint64_t *out)
{
    const char *line = first_line(r, open_file, path, len, name);
    return line && (line = number(line, out)) && *line == '\0';
}

#define LONGEST_NAME "/cpu.cfs_period_us"

/* One cgroup's limit in CPUs, INFINITY for none. A v1 quota of -1 is no
 * number, nor is v2's "max": both are no limit, as anything unparsable. */
static double limit_of(struct lines *r, open_fn open_file, bool v1, char *path, size_t len)
{
    uint64_t quota, period;
    if (v1) {
        if (!number_file(r, open_file, path, len, "/cpu.cfs_quota_us", &quota) ||
            !number_file(r, open_file, path, len, LONGEST_NAME, &period))
            return INFINITY;
    } else {
        const char *line = first_line(r, open_file, path, len, "/cpu.max");
        if (!line || !(line = number(line, &quota)) || *line != ' ' ||
            !(line = number(line + 1, &period)) || *line != '\0')
            return INFINITY;
    }
    return period ? (double)quota / (double)period : INFINITY;
}

/* The process's cgroup, from /proc/self/cgroup, into path: the one with the
 * cpu controller in v1 (*v1 set), else the v2 one. */
static bool find_cgroup(struct lines *r, open_fn open_file, char *path, bool *v1)
{
    if (!lines_open(r, open_file, "/proc/self/cgroup"))
        return false;
    bool found = false;
    for (char *id; !(found && *v1) && (id = next_line(r));) {
        char *controllers = strchr(id, ':');
        char *cgroup = controllers ? strchr(controllers + 1, ':') : NULL;
        if (!cgroup || cgroup[1] != '/')
            continue;
        *controllers++ = *cgroup++ = '\0';
        bool cpu = has_word(controllers, "cpu");
        if (cpu || (strcmp(id, "0") == 0 && *controllers == '\0')) {
            strcpy(path, cgroup); /* shorter than the line */
            found = true;
            *v1 = cpu;
        }
    }
    close(r->fd);
    return found;
}

/* If mountinfo's `line` mounts the hierarchy of cgroup `path` and shows the
 * cgroup, its directory into path: true, and the mount point's length in
 * *top, the directory's in *len. The line:
 *   id parent major:minor root mount-point options [optional...] - type source super-options */
static bool mounts(char *line, bool v1, char *path, size_t *top, size_t *len)
{
    for (int i = 0; i < 3; i++)
        field(&line);
    char *root = field(&line), *mount = field(&line), *type;
    while ((type = field(&line)) && strcmp(type, "-") != 0)
        ;
    type = field(&line);
    field(&line); /* the source */
    char *super = field(&line);
    if (!super || strcmp(type, v1 ? "cgroup" : "cgroup2") != 0 || (v1 && !has_word(super, "cpu")) ||
        !unescape(root) || !unescape(mount))
        return false;
    size_t skip = strcmp(root, "/") == 0 ? 0 : strlen(root);
    if (strncmp(path, root, skip) != 0 || (path[skip] != '/' && path[skip] != '\0'))
        return false;
    size_t below = strlen(path + skip), mount_len = strlen(mount);
    while (below > 0 && path[skip + below - 1] == '/')
        below--; /* "/" itself: the mount point is the directory */
    if (mount_len + below + sizeof LONGEST_NAME > PATH_MAX)
        return false;
    memmove(path + mount_len, path + skip, below);
    memcpy(path, mount, mount_len);
    *top = mount_len;
    *len = mount_len + below;
    return true;
}

static bool find_mount(struct lines *r, open_fn open_file, bool v1, char *path, size_t *top,
                       size_t *len)
{
    if (!lines_open(r, open_file, "/proc/self/mountinfo"))
        return false;
    bool found = false;
    for (char *line; !found && (line = next_line(r));)
        found = mounts(line, v1, path, top, len);
    close(r->fd);
    return found;
}

double weft__cpu_quota(int (*open_file)(const char *path, int flags))
{
    struct lines r;
    char path[PATH_MAX];
    bool v1;
    size_t top, len;
    if (!find_cgroup(&r, open_file, path, &v1) || !find_mount(&r, open_file, v1, path, &top, &len))
        return INFINITY;
    /* From the cgroup up to the mount's top: each a slash shorter. */
    double cpus = INFINITY;
    for (;;) {
        double here = limit_of(&r, open_file, v1, path, len);
        cpus = here < cpus ? here : cpus;
        if (len == top)
            return cpus;
        while (len > top && path[--len] != '/')
            ;
    }
}
