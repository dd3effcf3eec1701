/* The init of the tests' Linux guest (tests/qemu_real/linux_guest.rs builds it with
 * `gcc -static` into an initramfs). It says on the console that the kernel is up, then
 * stands in for the drivers the guest does not have: every PCI function that appears
 * (at boot or hot-added) is enabled once through sysfs, which turns its decoding on when
 * the kernel could assign every BAR and fails when it could not, and is reported as
 * `devaddr-guest: <function> <vendor>:<device> enabled|not-enabled`. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEEN 1024

static char seen[MAX_SEEN][32];
static int n_seen;

static int read_small(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    return 0;
}

static int already_seen(const char *name) {
    for (int i = 0; i < n_seen; i++)
        if (strcmp(seen[i], name) == 0)
            return 1;
    return 0;
}

static void visit(int console, const char *name) {
    char path[256], vendor[16] = "?", device[16] = "?", class[16] = "";
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/class", name);
    read_small(path, class, sizeof class);
    /* Bridges are the kernel's own business. */
    if (strncmp(class, "0x0604", 6) == 0)
        return;
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vendor", name);
    read_small(path, vendor, sizeof vendor);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/device", name);
    read_small(path, device, sizeof device);
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/enable", name);
    int ok = 0;
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        ok = write(fd, "1", 1) == 1;
        close(fd);
    }
    dprintf(console, "devaddr-guest: %s %s:%s %s\n", name, vendor + 2, device + 2,
            ok ? "enabled" : "not-enabled");
}

int main(void) {
    mkdir("/sys", 0755);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    int console = open("/dev/console", O_WRONLY);
    dprintf(console, "devaddr-guest: ready\n");
    for (;;) {
        DIR *d = opendir("/sys/bus/pci/devices");
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || already_seen(e->d_name) || n_seen == MAX_SEEN)
                continue;
            snprintf(seen[n_seen++], sizeof seen[0], "%.31s", e->d_name);
            visit(console, e->d_name);
        }
        if (d)
            closedir(d);
        usleep(100000);
    }
}
