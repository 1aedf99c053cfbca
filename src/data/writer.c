/* Atomic HDF5 writer.  The HDF5 file is built in memory (HDF5's core driver without a backing
 * store), so HDF5 itself never writes to disk and a full disk cannot leave it with a half-closed
 * file.  On commit the image is written with write(2) to a temporary file in the target's
 * directory (created when the writer is), fsync'ed, given the target's mode (and owner, as root),
 * and renamed over the target (rename(2) is atomic within a file system); then the directory is
 * fsync'ed so the rename itself is durable.  A failed call makes the writer failed, and a failed
 * writer never touches the target and removes its temporary file.  A process killed while
 * writing leaves its temporary file behind: the name ".nde-HHHHHHHH-RRRRRRRR.tmp" carries a hash
 * of the target's name, the writer holds an flock(2) on it until the rename, and the next writer
 * of the same name removes those of its name that nobody holds (stale_sweep; on local file
 * systems only: NFS and SMB emulate flock with locks too weak for it). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"

struct nde_writer {
  char *path; /* target as given (for messages) */
  char *real; /* the file actually replaced: path with symbolic links followed */
  char *dir;  /* directory of real */
  char *tmp;  /* temporary file in dir */
  int fd;     /* open on tmp until commit */
  int lock;   /* a second descriptor of fd's open file, holding its flock until the rename */
  int has_old;       /* real exists: keep its mode and owner */
  struct stat old;
  hid_t file;   /* the HDF5 file in memory */
  nde__err err; /* sticky: the first failure */
  int done;     /* committed or aborted */
};

/* strerror with a lower-case first letter, as the rest of a message reads. */
static const char *why_errno(int code, char *buf, size_t n) {
  snprintf(buf, n, "%s", strerror(code));
  if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] += 'a' - 'A';
  return buf;
}

static nde_status fail_h5(nde_writer *w, const char *obj, const char *what) {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  return nde__derrf(&w->err, NDE_ERR_IO, "%s:%s: %s (HDF5: %s)", w->path, obj, what, h5);
}

static nde_status fail_errno(nde_writer *w, const char *what, int code) {
  char buf[128];
  return nde__derrf(&w->err, NDE_ERR_IO, "%s: %s (%s)", w->path, what,
                    why_errno(code, buf, sizeof buf));
}

/* Close the in-memory file and the temporary file, and remove the latter. */
static void abort_tmp(nde_writer *w) {
  if (w->file >= 0) {
    H5Fclose(w->file);
    w->file = -1;
  }
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  if (w->tmp && !w->done) unlink(w->tmp);
  if (w->lock >= 0) {
    close(w->lock);
    w->lock = -1;
  }
  w->done = 1;
}

/* ---- the target ---- */

/* The directory part of path ("." when none, "/" for "/name"); malloc'ed. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return nde__strdup(".");
  if (slash == path) return nde__strdup("/");
  size_t n = (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = '\0';
  }
  return d;
}

/* Follow symbolic links from path to the name that is really written (which need not exist yet).
 * *real is malloc'ed; *exists and *sb describe it when it exists. */
static nde_status resolve(nde__err *e, const char *path, char **real, int *exists,
                          struct stat *sb) {
  char *p = nde__strdup(path);
  *real = NULL;
  *exists = 0;
  if (!p) return nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", path);
  char buf[64];
  for (int hop = 0;; hop++) {
    if (lstat(p, sb) != 0) {
      if (errno == ENOENT) break; /* a new file (a dangling link's target is created) */
      int code = errno;
      free(p);
      return nde__derrf(e, NDE_ERR_IO, "%s: cannot write (%s)", path,
                        why_errno(code, buf, sizeof buf));
    }
    if (!S_ISLNK(sb->st_mode)) {
      *exists = 1;
      break;
    }
    if (hop == 40) {
      free(p);
      return nde__derrf(e, NDE_ERR_IO, "%s: cannot write (%s)", path,
                        why_errno(ELOOP, buf, sizeof buf));
    }
    size_t cap = (size_t)sb->st_size + 2;
    if (cap < 64) cap = 64;
    char *link = NULL;
    ssize_t got;
    for (;;) {
      char *nl = realloc(link, cap);
      if (!nl) {
        free(link);
        free(p);
        return nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", path);
      }
      link = nl;
      got = readlink(p, link, cap);
      if (got < 0 || (size_t)got < cap) break;
      cap *= 2;
    }
    if (got < 0) {
      int code = errno;
      free(link);
      free(p);
      return nde__derrf(e, NDE_ERR_IO, "%s: cannot write (cannot read the link: %s)", path,
                        why_errno(code, buf, sizeof buf));
    }
    link[got] = '\0';
    char *next;
    if (link[0] == '/' || !strchr(p, '/')) {
      next = link;
      link = NULL;
    } else {
      char *d = dir_of(p);
      next = d ? malloc(strlen(d) + strlen(link) + 2) : NULL;
      if (next) sprintf(next, "%s/%s", d, link);
      free(d);
      free(link);
    }
    free(p);
    p = next;
    if (!p) return nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", path);
  }
  *real = p;
  return NDE_OK;
}

/* Every check of nde_writer_check_target; on success *real (malloc'ed), *dir (malloc'ed) and
 * *exists and *sb describe the target. */
static nde_status check_target(nde__err *e, const char *path, char **real, char **dir,
                               int *exists, struct stat *sb) {
  char buf[128];
  *real = *dir = NULL;
  size_t len = strlen(path);
  if (len == 0 || path[len - 1] == '/')
    return nde__derrf(e, NDE_ERR_IO, "%s: cannot write (expected a file name, got %s)", path,
                      len ? "a directory" : "an empty name");
  nde_status st = resolve(e, path, real, exists, sb);
  if (st) return st;
  if (*exists && !S_ISREG(sb->st_mode)) {
    st = nde__derrf(e, NDE_ERR_IO, "%s: cannot write (expected a regular file, got %s)", path,
                    nde__file_kind(sb->st_mode));
    goto fail;
  }
  *dir = dir_of(*real);
  if (!*dir) {
    st = nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  struct stat ds;
  if (stat(*dir, &ds) != 0) {
    int code = errno;
    st = nde__derrf(e, NDE_ERR_IO, "%s: cannot write (directory %s %s)", path, *dir,
                    code == ENOENT ? "does not exist" : why_errno(code, buf, sizeof buf));
    goto fail;
  }
  if (!S_ISDIR(ds.st_mode)) {
    st = nde__derrf(e, NDE_ERR_IO, "%s: cannot write (%s is not a directory)", path, *dir);
    goto fail;
  }
  if (access(*dir, W_OK | X_OK) != 0) {
    int code = errno;
    st = nde__derrf(e, NDE_ERR_IO, "%s: cannot write (directory %s %s)", path, *dir,
                    code == EROFS   ? "is on a read-only file system"
                    : code == EACCES ? "is not writable"
                                     : why_errno(code, buf, sizeof buf));
    goto fail;
  }
  return NDE_OK;
fail:
  free(*real);
  free(*dir);
  *real = *dir = NULL;
  return st;
}

static nde_status create_tmp(nde__err *e, nde_writer *w);

nde_status nde_writer_check_target(const char *path, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  if (!path) {
    nde__derrf(&e, NDE_ERR_ARG, "nde_writer_check_target: path is NULL");
    nde__data_err_out(&e, err);
    return NDE_ERR_ARG;
  }
  char *real, *dir;
  int exists;
  struct stat sb;
  nde_status st = check_target(&e, path, &real, &dir, &exists, &sb);
  if (st == NDE_OK) {
    /* access() can say yes where no file can be made (a pseudo file system such as /sys for
     * root, a full inode table): create the writer's kind of temporary file there and remove
     * it, so that a long run is refused before its work rather than after. */
    nde_writer probe = {0};
    probe.path = (char *)path;
    probe.dir = dir;
    probe.real = real;
    probe.fd = -1;
    st = create_tmp(&e, &probe);
    if (st == NDE_OK) {
      close(probe.fd);
      unlink(probe.tmp);
      if (probe.lock >= 0) close(probe.lock);
      free(probe.tmp);
    }
  }
  free(real);
  free(dir);
  nde__data_err_out(&e, err);
  return st;
}

int nde_path_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  if (!a || !b || stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The hash of the target's file name in its temporary files' names (FNV-1a, 32 bits). */
static unsigned name_hash(const char *path) {
  const char *slash = strrchr(path, '/');
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)(slash ? slash + 1 : path); *c; c++)
    h = (h ^ *c) * 16777619u;
  return h;
}

/* Remove the temporary files of the target's name in dir that no writer holds: left by a
 * process killed while writing (its flock went with it).  A file is removed only while this
 * call holds its lock and it is still the file under that name; a writer that created it a
 * moment ago sees it gone once it gets the lock and makes another. */
static void stale_sweep(const char *dir, unsigned hash) {
  /* On network file systems flock is emulated with POSIX record locks, which a process drops
   * when it closes any descriptor of the file (the writer closes one before its rename) and
   * which do not exclude its own other descriptors: a live writer's file could be taken for
   * stale.  There, nothing is swept. */
  struct statfs sf;
  if (statfs(dir, &sf) == 0 && (sf.f_type == NFS_SUPER_MAGIC || sf.f_type == SMB_SUPER_MAGIC ||
                                (unsigned long)sf.f_type == 0xFF534D42ul /* CIFS */ ||
                                (unsigned long)sf.f_type == 0xFE534D42ul /* SMB2 */))
    return;
  char prefix[32];
  snprintf(prefix, sizeof prefix, ".nde-%08x-", hash);
  const size_t pl = strlen(prefix), dl = strlen(dir);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    const size_t nl = strlen(de->d_name);
    if (nl != pl + 12 || strncmp(de->d_name, prefix, pl) || strcmp(de->d_name + nl - 4, ".tmp"))
      continue;
    char *p = malloc(dl + nl + 2);
    if (!p) break;
    snprintf(p, dl + nl + 2, "%s/%s", dir, de->d_name);
    const int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat a, b;
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 &&
        S_ISREG(a.st_mode) && lstat(p, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
      unlink(p);
    if (fd >= 0) close(fd);
    free(p);
  }
  closedir(d);
}

/* Create the temporary file ".nde-HHHHHHHH-RRRRRRRR.tmp" in w->dir (H the hash of the target's
 * name, R random): short whatever the target's name (a 255-byte name stays valid), mode 0666
 * less the umask as any new file, locked (flock) by this writer, retried only on a name
 * collision or when a sweep removed it before the lock was taken. */
static nde_status create_tmp(nde__err *e, nde_writer *w) {
  char buf[128];
  size_t dl = strlen(w->dir);
  w->lock = -1;
  w->tmp = malloc(dl + 32);
  if (!w->tmp) return nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", w->path);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  nde_rng rng;
  nde_rng_seed(&rng, (uint64_t)getpid() ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                         (uint64_t)(uintptr_t)w);
  const unsigned hash = name_hash(w->real ? w->real : w->path);
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(w->tmp, dl + 32, "%s/.nde-%08x-%08llx.tmp", w->dir, hash,
             (unsigned long long)(nde_rng_u64(&rng) & 0xffffffffu));
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0) {
      if (errno != EEXIST) break;
      continue;
    }
    /* Locked through a second descriptor, so that the lock outlives the close that reports
     * write errors before the rename. */
    struct stat a, b;
    w->lock = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
    /* Without a lock (no descriptor left, a file system without flock) the file is still
     * ours: written as before, unguarded against a sweep. */
    if (w->lock < 0 || flock(w->lock, LOCK_EX) != 0) return NDE_OK;
    if (fstat(w->fd, &a) == 0 && lstat(w->tmp, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
      return NDE_OK;
    close(w->fd);
    close(w->lock);
    w->fd = w->lock = -1;
  }
  int code = errno;
  free(w->tmp);
  w->tmp = NULL;
  return nde__derrf(e, NDE_ERR_IO, "%s: cannot create a temporary file in %s (%s)", w->path,
                    w->dir, why_errno(code, buf, sizeof buf));
}

/* A writer of path without its HDF5 file: the target checked, stale temporary files of its
 * name swept, its own temporary file created and locked.  *out is NULL on failure. */
static nde_status writer_begin(nde__err *e, const char *path, nde_writer **out) {
  *out = NULL;
  nde_status st;
  nde_writer *w = calloc(1, sizeof *w);
  if (!w) return nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", path);
  w->file = -1;
  w->fd = -1;
  w->lock = -1;
  w->path = nde__strdup(path);
  if (!w->path) {
    free(w);
    return nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", path);
  }
  if ((st = check_target(e, path, &w->real, &w->dir, &w->has_old, &w->old)) == NDE_OK) {
    stale_sweep(w->dir, name_hash(w->real ? w->real : w->path));
    st = create_tmp(e, w);
  }
  if (st != NDE_OK) {
    nde_writer_destroy(&w);
    return st;
  }
  *out = w;
  return NDE_OK;
}

nde_status nde_writer_create(const char *path, nde_writer **out, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  nde__h5quiet q;
  nde_status st = NDE_OK;
  hid_t fapl = -1, fcpl = -1;
  if (out) *out = NULL;
  if (!path || !out) {
    st = nde__derrf(&e, NDE_ERR_ARG, "nde_writer_create: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  nde__h5_quiet_begin(&q);
  nde_writer *w = NULL;
  if ((st = writer_begin(&e, path, &w))) goto fail;
  /* In memory, grown 1 MiB at a time, never written by HDF5.  Every object tracks the creation
   * order of its attributes, which gives it a version 2 object header, so attributes beyond
   * 64 KiB (the names of thousands of states) go to dense storage instead of failing.  (Raising
   * the library version bound instead would give a version 2 superblock, whose checksum HDF5
   * 1.10.8 leaves stale in H5Fget_file_image.) */
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  fcpl = H5Pcreate(H5P_FILE_CREATE);
  if (fapl < 0 || fcpl < 0 || H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) < 0 ||
      H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED) < 0 ||
      H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    st = fail_h5(w, "/", "cannot create");
    e = w->err;
    goto fail;
  }
  w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl);
  if (w->file < 0) {
    st = fail_h5(w, "/", "cannot create");
    e = w->err;
    goto fail;
  }
  H5Pclose(fapl);
  H5Pclose(fcpl);
  nde__err_clear(&w->err);
  *out = w;
  nde__h5_quiet_end(&q);
  nde__data_err_out(&e, err);
  return NDE_OK;

fail:
  if (fapl >= 0) H5Pclose(fapl);
  if (fcpl >= 0) H5Pclose(fcpl);
  nde_writer_destroy(&w);
  nde__h5_quiet_end(&q);
  nde__data_err_out(&e, err);
  return st;
}

void nde_writer_destroy(nde_writer **wp) {
  if (!wp || !*wp) return;
  nde_writer *w = *wp;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  abort_tmp(w);
  nde__h5_quiet_end(&q);
  free(w->path);
  free(w->real);
  free(w->dir);
  free(w->tmp);
  free(w);
  *wp = NULL;
}

const char *nde_writer_errmsg(const nde_writer *w) {
  return w ? nde__err_msg(&w->err) : nde_status_str(NDE_ERR_ARG);
}

/* Common entry of every put: the sticky failure, a finished writer, the path's form. */
static nde_status put_begin(nde_writer *w, const char *path, const char *fn) {
  if (!w) return NDE_ERR_ARG;
  if (w->err.status != NDE_OK) return w->err.status;
  if (w->done) return nde__derrf(&w->err, NDE_ERR_ARG, "%s: %s after commit", w->path, fn);
  if (!path || path[0] != '/' || !path[1])
    return nde__derrf(&w->err, NDE_ERR_ARG, "%s: %s: path \"%s\" is not absolute (expected "
                     "\"/group/name\")", w->path, fn, path ? path : "(null)");
  if (nde__h5_kind(w->file, path) != NDE_H5_NONE)
    return nde__derrf(&w->err, NDE_ERR_ARG, "%s:%s: already exists (expected a new dataset)",
                     w->path, path);
  return NDE_OK;
}

/* Create the group at path (absolute, missing) with dense-capable attribute storage. */
static hid_t make_group(nde_writer *w, const char *path) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  hid_t g = -1;
  if (gcpl >= 0 && H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED) >= 0)
    g = H5Gcreate2(w->file, path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  return g;
}

/* Create every missing group above path ("/a/b/c": /a and /a/b).  0 or -1. */
static int make_parents(nde_writer *w, const char *path) {
  char *p = nde__strdup(path);
  if (!p) return -1;
  int rc = 0;
  for (char *s = strchr(p + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
    *s = '\0';
    nde_h5_kind k = nde__h5_kind(w->file, p);
    if (k == NDE_H5_NONE) {
      hid_t g = make_group(w, p);
      if (g < 0)
        rc = -1;
      else
        H5Gclose(g);
    } else if (k != NDE_H5_GROUP) {
      rc = -1;
    }
    *s = '/';
  }
  free(p);
  return rc;
}

/* Create a dataset of type ftype and shape dims at path, write buf in mtype. */
static nde_status put_dataset(nde_writer *w, const char *path, hid_t ftype, hid_t mtype,
                              int rank, const size_t *dims, const void *buf) {
  hsize_t hd[NDE_DATA_MAX_RANK];
  if (rank < 0 || rank > NDE_DATA_MAX_RANK || (rank > 0 && !dims) || !buf)
    return nde__derrf(&w->err, NDE_ERR_ARG,
                     "%s:%s: invalid shape (expected rank 0..%d with dims and data, got rank %d)",
                     w->path, path, NDE_DATA_MAX_RANK, rank);
  for (int i = 0; i < rank; i++) hd[i] = (hsize_t)dims[i];
  nde_status st = NDE_OK;
  hid_t space = rank ? H5Screate_simple(rank, hd, NULL) : H5Screate(H5S_SCALAR);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t ds = -1;
  if (space < 0 || dcpl < 0 || H5Pset_attr_creation_order(dcpl, H5P_CRT_ORDER_TRACKED) < 0 ||
      make_parents(w, path) < 0) {
    st = fail_h5(w, path, "cannot create");
    goto out;
  }
  ds = H5Dcreate2(w->file, path, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (ds < 0) {
    st = fail_h5(w, path, "cannot create");
    goto out;
  }
  if (H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    st = fail_h5(w, path, "cannot write");
out:
  if (ds >= 0) H5Dclose(ds);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  return st;
}

static nde_status put_numeric(nde_writer *w, const char *path, int rank, const size_t *dims,
                              const void *x, hid_t ftype, hid_t mtype, const char *fn) {
  nde__h5quiet q;
  nde_status st = put_begin(w, path, fn);
  if (st) return st;
  nde__h5_quiet_begin(&q);
  st = put_dataset(w, path, ftype, mtype, rank, dims, x);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_writer_put_doubles(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const double *x) {
  return put_numeric(w, path, rank, dims, x, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     "nde_writer_put_doubles");
}

nde_status nde_writer_put_int64s(nde_writer *w, const char *path, int rank, const size_t *dims,
                                 const int64_t *x) {
  return put_numeric(w, path, rank, dims, x, H5T_STD_I64LE, H5T_NATIVE_INT64,
                     "nde_writer_put_int64s");
}

nde_status nde_writer_put_uint64s(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const uint64_t *x) {
  return put_numeric(w, path, rank, dims, x, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                     "nde_writer_put_uint64s");
}

/* A variable-length UTF-8 string type (what h5py writes for str). */
static hid_t vlen_utf8(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

static nde_status put_strs(nde_writer *w, const char *path, int rank, size_t n,
                           const char *const *strs, const char *fn) {
  nde__h5quiet q;
  nde_status st = put_begin(w, path, fn);
  if (st) return st;
  for (size_t i = 0; i < n; i++)
    if (!strs || !strs[i])
      return nde__derrf(&w->err, NDE_ERR_ARG, "%s:%s: string %zu is NULL", w->path, path, i);
  nde__h5_quiet_begin(&q);
  hid_t t = vlen_utf8();
  if (t < 0)
    st = fail_h5(w, path, "cannot create");
  else
    st = put_dataset(w, path, t, t, rank, &n, strs);
  if (t >= 0) H5Tclose(t);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_writer_put_string(nde_writer *w, const char *path, const char *text) {
  return put_strs(w, path, 0, 1, &text, "nde_writer_put_string");
}

nde_status nde_writer_put_strings(nde_writer *w, const char *path, size_t n,
                                  const char *const *strs) {
  static const char *const none[1] = {""};
  return put_strs(w, path, 1, n, n ? strs : none, "nde_writer_put_strings");
}

/* Open obj for attributes, creating a group (and its parents) when missing. */
static hid_t open_or_create(nde_writer *w, const char *obj) {
  if (nde__h5_kind(w->file, obj) != NDE_H5_NONE) return H5Oopen(w->file, obj, H5P_DEFAULT);
  if (make_parents(w, obj) < 0) return -1;
  return make_group(w, obj);
}

static nde_status set_attr(nde_writer *w, const char *obj, const char *name, hid_t type,
                           int rank, size_t n, const void *buf) {
  if (!w) return NDE_ERR_ARG;
  if (w->err.status != NDE_OK) return w->err.status;
  if (w->done) return nde__derrf(&w->err, NDE_ERR_ARG, "%s: attribute set after commit", w->path);
  if (!obj || obj[0] != '/' || !name || !name[0])
    return nde__derrf(&w->err, NDE_ERR_ARG,
                     "%s: attribute needs an absolute object path and a name (got \"%s\", \"%s\")",
                     w->path, obj ? obj : "(null)", name ? name : "(null)");
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  nde_status st = NDE_OK;
  hsize_t hn = n;
  hid_t space = rank ? H5Screate_simple(1, &hn, NULL) : H5Screate(H5S_SCALAR);
  hid_t o = open_or_create(w, obj), a = -1;
  if (space < 0 || o < 0) {
    st = fail_h5(w, obj, "cannot open for attributes");
    goto out;
  }
  htri_t ex = H5Aexists(o, name);
  if (ex > 0 && H5Adelete(o, name) < 0) ex = -1;
  if (ex < 0) {
    st = fail_h5(w, obj, "cannot replace attribute");
    goto out;
  }
  a = H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, type, buf) < 0) st = fail_h5(w, obj, "cannot write attribute");
out:
  if (a >= 0) H5Aclose(a);
  if (o >= 0) H5Oclose(o);
  if (space >= 0) H5Sclose(space);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_writer_set_attr_string(nde_writer *w, const char *obj, const char *name,
                                      const char *value) {
  if (w && !value && w->err.status == NDE_OK)
    return nde__derrf(&w->err, NDE_ERR_ARG, "%s:%s: attribute %s is NULL", w->path,
                     obj ? obj : "", name ? name : "");
  hid_t t = vlen_utf8();
  nde_status st = set_attr(w, obj, name, t, 0, 1, &value);
  if (t >= 0) H5Tclose(t);
  return st;
}

nde_status nde_writer_set_attr_double(nde_writer *w, const char *obj, const char *name,
                                      double value) {
  return set_attr(w, obj, name, H5T_NATIVE_DOUBLE, 0, 1, &value);
}

nde_status nde_writer_set_attr_int64(nde_writer *w, const char *obj, const char *name,
                                     int64_t value) {
  return set_attr(w, obj, name, H5T_NATIVE_INT64, 0, 1, &value);
}

nde_status nde_writer_put_series(nde_writer *w, const char *group, const nde_series *s) {
  return nde_writer_put_series_ex(w, group, s, NULL);
}

nde_status nde_writer_put_series_ex(nde_writer *w, const char *group, const nde_series *s,
                                    const nde_series_extra *x) {
  static const nde_series_extra none;
  if (!x) x = &none;
  if (!w) return NDE_ERR_ARG;
  if (w->err.status != NDE_OK) return w->err.status;
  const char *g = group && group[0] ? group : "/";
  if (g[0] != '/')
    return nde__derrf(&w->err, NDE_ERR_ARG, "%s: group \"%s\" is not absolute", w->path, g);
  if (!s || !s->t || !s->y || (x->m && (!x->u_t || !x->u)) ||
      (x->n_consts && (!x->const_names || !x->consts)))
    return nde__derrf(&w->err, NDE_ERR_ARG, "%s:%s: series without t, y, inputs or constants",
                      w->path, g);
  nde_status st;
  if ((st = nde__check_series(&w->err, w->path, g, s, x, NULL))) return st;
  char *tp = nde__h5_join(g, "t"), *yp = nde__h5_join(g, "y");
  char *ut = nde__h5_join(g, "inputs/t"), *up = nde__h5_join(g, "inputs/u");
  hid_t str = vlen_utf8();
  if (!tp || !yp || !ut || !up || str < 0) {
    st = nde__derrf(&w->err, NDE_ERR_NOMEM, "%s:%s: out of memory", w->path, g);
    goto out;
  }
  size_t dims[2] = {s->n, s->d};
  if ((st = nde_writer_put_doubles(w, tp, 1, dims, s->t))) goto out;
  if ((st = nde_writer_put_doubles(w, yp, 2, dims, s->y))) goto out;
  if (s->names && (st = set_attr(w, yp, "state_names", str, 1, s->d, s->names))) goto out;
  if (s->noise_std &&
      (st = set_attr(w, yp, "noise_std", H5T_NATIVE_DOUBLE, 1, s->d, s->noise_std)))
    goto out;
  if (x->sigma && (st = set_attr(w, yp, "sigma", H5T_NATIVE_DOUBLE, 1, s->d, x->sigma)))
    goto out;
  if (x->m) {
    size_t ud[2] = {x->n_u, x->m};
    if ((st = nde_writer_put_doubles(w, ut, 1, ud, x->u_t))) goto out;
    if ((st = nde_writer_put_doubles(w, up, 2, ud, x->u))) goto out;
    if ((st = set_attr(w, up, "input_names", str, 1, x->m, x->input_names))) goto out;
  }
  for (size_t k = 0; k < x->n_consts; k++)
    if ((st = set_attr(w, g, x->const_names[k], H5T_NATIVE_DOUBLE, 0, 1, &x->consts[k])))
      goto out;
out:
  if (str >= 0) H5Tclose(str);
  free(tp);
  free(yp);
  free(ut);
  free(up);
  return st;
}

/* write(2) all of buf, through short writes and interrupts. */
static int write_all(int fd, const unsigned char *buf, size_t n) {
  while (n) {
    ssize_t k = write(fd, buf, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) {
      errno = EIO;
      return -1;
    }
    buf += k;
    n -= (size_t)k;
  }
  return 0;
}

/* The bytes into the temporary file, synced, with the old file's mode (and, as root, owner),
 * renamed over the target, the directory synced.  On failure the caller aborts (abort_tmp). */
static nde_status commit_bytes(nde_writer *w, const void *bytes, size_t len) {
  if (write_all(w->fd, bytes, len) != 0) return fail_errno(w, "cannot write", errno);
  if (fsync(w->fd) != 0) return fail_errno(w, "cannot write (sync)", errno);
  /* Replacing a file keeps its permissions, and as root its owner (the new file is ours). */
  if (w->has_old) {
    if (fchmod(w->fd, w->old.st_mode & 07777) != 0)
      return fail_errno(w, "cannot keep the file's mode", errno);
    if (geteuid() == 0 && fchown(w->fd, w->old.st_uid, w->old.st_gid) != 0)
      return fail_errno(w, "cannot keep the file's owner", errno);
  }
  int fd = w->fd;
  w->fd = -1;
  if (close(fd) != 0) return fail_errno(w, "cannot write", errno);
  if (rename(w->tmp, w->real) != 0)
    return fail_errno(w, "cannot replace with the written file", errno);
  w->done = 1;
  if (w->lock >= 0) {
    close(w->lock);
    w->lock = -1;
  }
  /* The rename is done; a directory that cannot be synced (some file systems refuse) only
   * weakens durability, never consistency. */
  int dfd = open(w->dir, O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return NDE_OK;
}

nde_status nde_write_file(const char *path, const void *bytes, size_t len, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  if (!path || (!bytes && len)) {
    const nde_status st = nde__derrf(&e, NDE_ERR_ARG, "nde_write_file: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  nde_writer *w = NULL;
  nde_status st = writer_begin(&e, path, &w);
  if (st == NDE_OK && (st = commit_bytes(w, bytes, len)) != NDE_OK) e = w->err;
  nde_writer_destroy(&w);
  nde__data_err_out(&e, err);
  return st;
}

nde_status nde_writer_commit(nde_writer *w) {
  if (!w) return NDE_ERR_ARG;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  unsigned char *image = NULL;
  nde_status st = w->err.status;
  if (st == NDE_OK && w->done)
    st = nde__derrf(&w->err, NDE_ERR_ARG, "%s: commit of a finished writer", w->path);
  if (st != NDE_OK) goto fail;
  if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
    st = fail_h5(w, "/", "cannot finish the file");
    goto fail;
  }
  ssize_t size = H5Fget_file_image(w->file, NULL, 0);
  image = size > 0 ? malloc((size_t)size) : NULL;
  if (!image) {
    st = size > 0 ? nde__derrf(&w->err, NDE_ERR_NOMEM, "%s: out of memory for %lld bytes",
                               w->path, (long long)size)
                  : fail_h5(w, "/", "cannot finish the file");
    goto fail;
  }
  if (H5Fget_file_image(w->file, image, (size_t)size) != size) {
    st = fail_h5(w, "/", "cannot finish the file");
    goto fail;
  }
  herr_t rc = H5Fclose(w->file);
  w->file = -1;
  if (rc < 0) {
    st = fail_h5(w, "/", "cannot finish the file");
    goto fail;
  }
  st = commit_bytes(w, image, (size_t)size);
  free(image);
  image = NULL;
  if (st != NDE_OK) goto fail;
  nde__h5_quiet_end(&q);
  return NDE_OK;
fail:
  free(image);
  abort_tmp(w);
  nde__h5_quiet_end(&q);
  return st;
}
