/* HDF5 helpers of the data layer: silence and read HDF5's error stack, name datatypes, look up
 * objects without tripping errors on missing parents, read strings of every HDF5 flavour without
 * trusting a corrupt global heap, index names by hash, and the validation of a time series shared
 * by the file reader, the array reader and the writer. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"

void nde__h5_quiet_begin(nde__h5quiet *q) {
  q->func = NULL;
  q->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void nde__h5_quiet_end(const nde__h5quiet *q) {
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct last_error {
  char *buf;
  size_t n;
} last_error;

static herr_t walk_first(unsigned k, const H5E_error2_t *e, void *ctx) {
  last_error *le = ctx;
  if (k == 0 && e->desc) snprintf(le->buf, le->n, "%s", e->desc);
  return 0;
}

void nde__h5_last_error(char *buf, size_t n) {
  if (n == 0) return;
  buf[0] = '\0';
  last_error le = {buf, n};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, &le);
  H5Eclear2(H5E_DEFAULT);
  if (!buf[0]) snprintf(buf, n, "unknown HDF5 failure");
}

void nde__h5_type_name(hid_t type, char *buf, size_t n) {
  size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      snprintf(buf, n, "%s%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int", bits);
      return;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", bits); return;
    case H5T_STRING: snprintf(buf, n, "string"); return;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); return;
    case H5T_ENUM: snprintf(buf, n, "enum"); return;
    case H5T_ARRAY: snprintf(buf, n, "array"); return;
    case H5T_VLEN: snprintf(buf, n, "variable-length sequence"); return;
    case H5T_BITFIELD: snprintf(buf, n, "bitfield"); return;
    case H5T_OPAQUE: snprintf(buf, n, "opaque"); return;
    case H5T_REFERENCE: snprintf(buf, n, "reference"); return;
    case H5T_TIME: snprintf(buf, n, "time"); return;
    default: snprintf(buf, n, "unknown type"); return;
  }
}

nde_h5_kind nde__h5_kind(hid_t file, const char *path) {
  if (!path || path[0] != '/') return NDE_H5_NONE;
  if (path[1] == '\0') return NDE_H5_GROUP;
  /* H5Lexists fails rather than answering "no" when a parent is missing: check every prefix. */
  size_t len = strlen(path);
  char *p = malloc(len + 1);
  if (!p) return NDE_H5_NONE;
  memcpy(p, path, len + 1);
  nde_h5_kind kind = NDE_H5_NONE;
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char c = p[i];
    p[i] = '\0';
    htri_t ex = H5Lexists(file, p, H5P_DEFAULT);
    if (ex > 0) ex = H5Oexists_by_name(file, p, H5P_DEFAULT);
    p[i] = c;
    if (ex <= 0) goto done;
  }
  hid_t obj = H5Oopen(file, path, H5P_DEFAULT);
  if (obj < 0) goto done;
  H5I_type_t t = H5Iget_type(obj);
  kind = t == H5I_GROUP ? NDE_H5_GROUP : t == H5I_DATASET ? NDE_H5_DATASET : NDE_H5_OTHER;
  H5Oclose(obj);
done:
  free(p);
  H5Eclear2(H5E_DEFAULT);
  return kind;
}

const char *nde__file_kind(unsigned mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

char *nde__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

char *nde__h5_join(const char *group, const char *leaf) {
  int root = !group || !group[0] || strcmp(group, "/") == 0;
  size_t g = root ? 0 : strlen(group), l = strlen(leaf);
  char *p = malloc(g + l + 2);
  if (!p) return NULL;
  if (g) memcpy(p, group, g);
  p[g] = '/';
  memcpy(p + g + 1, leaf, l + 1);
  return p;
}

nde_status nde__derrf(nde__err *e, nde_status status, const char *fmt, ...) {
  if (!e) return status;
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int len = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->status = status;
  if (len >= (int)sizeof e->msg) {
    char *full = malloc((size_t)len + 1);
    if (full) {
      vsnprintf(full, (size_t)len + 1, fmt, ap2);
      /* Keep 320 bytes of the beginning and as much of the end as fits. */
      const size_t head = 320, cap = sizeof e->msg - 1;
      static const char gap[] = " ... ";
      size_t tail = cap - head - (sizeof gap - 1);
      memcpy(e->msg, full, head);
      memcpy(e->msg + head, gap, sizeof gap - 1);
      memcpy(e->msg + head + sizeof gap - 1, full + (size_t)len - tail, tail);
      e->msg[cap] = '\0';
      free(full);
    }
  }
  va_end(ap2);
  return status;
}

/* ---- strings ---- */

/* Pack n strings into one block: n pointers followed by the texts. */
static char **pack_strings(size_t n, char *const *src, const size_t *len) {
  size_t total = 0;
  if (!nde__mul_size(n, sizeof(char *), &total)) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!nde__add_size(total, len[i] + 1, &total)) return NULL;
  }
  char **out = malloc(total ? total : 1);
  if (!out) return NULL;
  char *text = (char *)(out + n);
  for (size_t i = 0; i < n; i++) {
    out[i] = text;
    if (len[i]) memcpy(text, src[i], len[i]);
    text[len[i]] = '\0';
    text += len[i] + 1;
  }
  return out;
}

static size_t trimmed_len(const char *s, size_t max) {
  size_t l = 0;
  while (l < max && s[l]) l++;
  while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
  return l;
}

/* Little-endian unsigned integer of w bytes (w <= 8). */
static uint64_t get_le(const unsigned char *p, size_t w) {
  uint64_t v = 0;
  for (size_t i = w; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

#define RAW_TAG "nde-vlen-descriptor"

/* A soft conversion from a variable-length string in its file form to an opaque type of the
 * same size that copies nothing: reading with it yields the raw descriptors (length, heap
 * address, heap index) without touching the global heap. */
static herr_t conv_raw(hid_t src, hid_t dst, H5T_cdata_t *cd, size_t nelmts, size_t buf_stride,
                       size_t bkg_stride, void *buf, void *bkg, hid_t dxpl) {
  (void)nelmts;
  (void)buf_stride;
  (void)bkg_stride;
  (void)buf;
  (void)bkg;
  (void)dxpl;
  if (cd->command == H5T_CONV_INIT) {
    if (H5Tget_class(dst) != H5T_OPAQUE || H5Tis_variable_str(src) <= 0 ||
        H5Tget_size(src) != H5Tget_size(dst))
      return -1;
    char *tag = H5Tget_tag(dst);
    int ours = tag && strcmp(tag, RAW_TAG) == 0;
    H5free_memory(tag);
    if (!ours) return -1;
    cd->need_bkg = H5T_BKG_NO;
  }
  return 0;
}

/* The global heap collection last loaded, parsed as HDF5 1.10 parses it
 * (H5HG__cache_heap_deserialize): sizes[idx] is the size of object idx, UINT64_MAX when absent. */
typedef struct heap_ctx {
  int fd;
  uint64_t base, eof;
  size_t sa, ss;  /* sizes of addresses and lengths in the file */
  uint64_t addr;  /* collection loaded, or UINT64_MAX */
  uint64_t *sizes; /* [n_sizes] */
  size_t n_sizes;  /* highest object index + 1 */
} heap_ctx;

static int read_at(int fd, uint64_t off, void *buf, size_t n) {
  unsigned char *p = buf;
  while (n) {
    ssize_t k = pread(fd, p, n, (off_t)off);
    if (k <= 0) {
      if (k < 0 && errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

#define ALIGN8(x) (((x) + 7) & ~(uint64_t)7)

/* Walk the objects of a collection c of size bytes as HDF5 does: *max_idx receives the highest
 * object index and, when sizes is not NULL, sizes[idx] the size of each object.  Returns 0, or
 * the offset of an object that does not fit (or would stop HDF5's walk: size 0). */
static uint64_t heap_walk(const unsigned char *c, uint64_t size, size_t ss, uint64_t *sizes,
                          size_t *max_idx) {
  uint64_t objhdr = ALIGN8(8 + ss), p = ALIGN8(8 + ss);
  *max_idx = 0;
  while (p < size) {
    if (p + objhdr > size) break; /* a tail too small for an object header is free space */
    size_t idx = (size_t)get_le(c + p, 2);
    uint64_t osize = get_le(c + p + 8, ss);
    uint64_t need = idx == 0 ? osize : osize > size ? UINT64_MAX : objhdr + ALIGN8(osize);
    if (need == 0 || need > size - p) return p;
    if (idx > *max_idx) *max_idx = idx;
    if (sizes && idx > 0) sizes[idx] = osize;
    p += need;
  }
  return 0;
}

/* Load and check the collection at addr; why says what is wrong. */
static nde_status load_heap(heap_ctx *h, uint64_t addr, char *why, size_t whylen) {
  h->addr = UINT64_MAX;
  uint64_t abs = h->base + addr, hdr = ALIGN8(8 + h->ss);
  unsigned char head[32];
  if (addr > h->eof || abs > h->eof || h->eof - abs < hdr || read_at(h->fd, abs, head, hdr) != 0) {
    snprintf(why, whylen, "string heap at address %llu lies outside the file of %llu bytes",
             (unsigned long long)addr, (unsigned long long)h->eof);
    return NDE_ERR_DATA;
  }
  if (memcmp(head, "GCOL", 4) != 0 || head[4] != 1) {
    snprintf(why, whylen, "no string heap at address %llu (corrupt file)",
             (unsigned long long)addr);
    return NDE_ERR_DATA;
  }
  uint64_t size = get_le(head + 8, h->ss);
  if (size < hdr || size > h->eof - abs) {
    snprintf(why, whylen, "string heap at address %llu has an impossible size %llu",
             (unsigned long long)addr, (unsigned long long)size);
    return NDE_ERR_DATA;
  }
  unsigned char *c = malloc((size_t)size);
  if (!c) {
    snprintf(why, whylen, "out of memory for a string heap of %llu bytes",
             (unsigned long long)size);
    return NDE_ERR_NOMEM;
  }
  nde_status st = NDE_OK;
  if (read_at(h->fd, abs, c, (size_t)size) != 0) {
    snprintf(why, whylen, "cannot read the string heap at address %llu",
             (unsigned long long)addr);
    st = NDE_ERR_IO;
    goto out;
  }
  /* The walk HDF5 makes, twice: the highest index sizes the table, then the table is filled. */
  size_t max_idx = 0;
  uint64_t bad = heap_walk(c, size, h->ss, NULL, &max_idx);
  if (bad == 0) {
    free(h->sizes);
    h->n_sizes = max_idx + 1;
    h->sizes = malloc(h->n_sizes * sizeof *h->sizes);
    if (!h->sizes) {
      h->n_sizes = 0;
      snprintf(why, whylen, "out of memory reading a string heap");
      st = NDE_ERR_NOMEM;
      goto out;
    }
    for (size_t i = 0; i < h->n_sizes; i++) h->sizes[i] = UINT64_MAX;
    heap_walk(c, size, h->ss, h->sizes, &max_idx);
  } else {
    snprintf(why, whylen, "string heap at address %llu is corrupt (an object at offset %llu "
             "overruns the heap of %llu bytes)", (unsigned long long)addr,
             (unsigned long long)bad, (unsigned long long)size);
    st = NDE_ERR_DATA;
    goto out;
  }
  h->addr = addr;
out:
  free(c);
  return st;
}

/* The raw bytes of an open file: its descriptor, base address (the user block), size, and sizes
 * of addresses and lengths (1 to 8). */
typedef struct raw_file {
  int fd;
  uint64_t base, eof;
  size_t sa, ss;
} raw_file;

/* 1 when f describes file; 0 when its bytes cannot be read so (only the POSIX driver gives a
 * descriptor, and nde opens every file with it; others are read without the checks); -1 when
 * HDF5 fails. */
static int raw_file_of(hid_t file, raw_file *f) {
  hid_t fcpl = H5Fget_create_plist(file), fapl = H5Fget_access_plist(file);
  hsize_t ub = 0, eof = 0;
  void *handle = NULL;
  int ok = -1;
  if (fcpl >= 0 && fapl >= 0 && H5Pget_sizes(fcpl, &f->sa, &f->ss) >= 0 &&
      H5Pget_userblock(fcpl, &ub) >= 0 && H5Fget_filesize(file, &eof) >= 0) {
    ok = 0;
    if (H5Pget_driver(fapl) == H5FD_SEC2) {
      /* The POSIX driver always has a descriptor: without one the checks would be skipped. */
      ok = -1;
      if (H5Fget_vfd_handle(file, fapl, &handle) >= 0 && handle) {
        f->fd = *(int *)handle;
        f->base = ub;
        f->eof = eof;
        ok = 1;
      }
    }
  }
  if (fcpl >= 0) H5Pclose(fcpl);
  if (fapl >= 0) H5Pclose(fapl);
  return ok;
}

/* The free-list entry of a local heap at offset off of its data segment: its next offset and
 * size.  0 when it cannot be read (HDF5 then fails reading it, with an error). */
static int heap_block(const raw_file *f, uint64_t seg, uint64_t off, uint64_t *next,
                      uint64_t *size) {
  unsigned char blk[16];
  if (read_at(f->fd, f->base + seg + off, blk, 2 * f->ss) != 0) return 0;
  *next = get_le(blk, f->ss);
  *size = get_le(blk + f->ss, f->ss);
  return 1;
}

/* One local heap at file offset pos (its "HEAP" signature): when it parses as one (version 0, a
 * data segment inside the file), walk its free list as HDF5 does and say whether it loops or
 * overruns the segment.  The walk reads one entry per step and finds a loop with Brent's
 * algorithm (O(length) steps, O(1) memory); *budget is the number of entries every heap of the
 * file may still read, which a well-formed file (whose heaps do not overlap) never exhausts.
 * Returns 1 with why filled for a damaged heap, 0 otherwise. */
static int bad_local_heap(const raw_file *f, uint64_t pos, uint64_t *budget, char *why,
                          size_t whylen) {
  const uint64_t base = f->base, eof = f->eof;
  const size_t sa = f->sa, ss = f->ss;
  unsigned char head[8 + 8 + 8 + 8];
  const size_t n = 8 + 2 * ss + sa;
  if (pos > eof || eof - pos < n || read_at(f->fd, pos, head, n) != 0) return 0;
  if (head[4] != 0) return 0; /* not a version-0 local heap: HDF5 refuses it itself */
  const uint64_t dsize = get_le(head + 8, ss), first = get_le(head + 8 + ss, ss);
  const uint64_t seg = get_le(head + 8 + 2 * ss, sa);
  const uint64_t FREE_NULL = 1;
  if (first == FREE_NULL) return 0;
  /* A segment HDF5 cannot read fails there, with an error. */
  if (dsize == 0 || seg > eof || base > eof - seg || dsize > eof - base - seg) return 0;
  uint64_t tortoise = first, hare = first, power = 1, lam = 0;
  for (;;) {
    if (hare == FREE_NULL || hare >= dsize) return 0; /* the list ends (HDF5 checks >= dsize) */
    if (dsize - hare < 2 * ss) {
      snprintf(why, whylen, "the local heap at byte %llu (a group's list of names) is damaged: "
               "a free block at offset %llu overruns its %llu bytes", (unsigned long long)pos,
               (unsigned long long)hare, (unsigned long long)dsize);
      return 1;
    }
    if (*budget == 0) {
      snprintf(why, whylen, "the free lists of the local heaps (from byte %llu on) are longer "
               "than a file of %llu bytes can hold: the file is damaged",
               (unsigned long long)pos, (unsigned long long)eof);
      return 1;
    }
    --*budget;
    uint64_t next, size;
    if (!heap_block(f, seg, hare, &next, &size) || next == 0 || size > dsize - hare)
      return 0; /* HDF5 stops there with an error */
    hare = next;
    if (hare == tortoise) {
      snprintf(why, whylen, "the local heap at byte %llu (a group's list of names) is damaged: "
               "its free list loops", (unsigned long long)pos);
      return 1;
    }
    if (++lam == power) { /* Brent: the tortoise jumps to the hare at powers of two */
      tortoise = hare;
      power *= 2;
      lam = 0;
    }
  }
}

/* Check every local heap (the name lists of old-style groups) of an open file before HDF5 walks
 * it: HDF5 1.10.8 follows a heap's free list without noticing a loop, allocating until memory
 * runs out (H5HL__fl_deserialize, reached from any group lookup).  NDE_OK, or NDE_ERR_DATA with
 * why saying where the damage is (NDE_ERR_IO when the file cannot be read). */
static nde_status check_local_heaps(hid_t file, char *why, size_t whylen) {
  raw_file f;
  const int ok = raw_file_of(file, &f);
  if (ok < 0) {
    snprintf(why, whylen, "cannot read the file's layout");
    return NDE_ERR_IO;
  }
  if (ok == 0 || f.sa < 1 || f.sa > 8 || f.ss < 1 || f.ss > 8) return NDE_OK;
  nde_status st = NDE_OK;
  /* Free-list entries the heaps may read in all: each takes 2 lengths of a heap's segment, and
   * the segments of a well-formed file do not overlap. */
  uint64_t budget = f.eof / (2 * f.ss) + 1024;
  /* Every "HEAP" signature, reading the file in blocks that overlap by 3 bytes. */
  enum { BLOCK = 1 << 20 };
  unsigned char *buf = malloc(BLOCK);
  if (!buf) {
    snprintf(why, whylen, "out of memory");
    return NDE_ERR_NOMEM;
  }
  for (uint64_t at = 0; at < f.eof && st == NDE_OK;) {
    const size_t n = f.eof - at < BLOCK ? (size_t)(f.eof - at) : BLOCK;
    if (read_at(f.fd, at, buf, n) != 0) {
      snprintf(why, whylen, "cannot read byte %llu", (unsigned long long)at);
      st = NDE_ERR_IO;
      break;
    }
    for (size_t i = 0; i + 4 <= n && st == NDE_OK; i++) {
      const unsigned char *hit = memchr(buf + i, 'H', n - 3 - i);
      if (!hit) break;
      i = (size_t)(hit - buf);
      if (memcmp(hit, "HEAP", 4) == 0 && bad_local_heap(&f, at + i, &budget, why, whylen))
        st = NDE_ERR_DATA;
    }
    if (n < BLOCK) break;
    at += n - 3;
  }
  free(buf);
  return st;
}

/* Check every descriptor of the variable-length strings of id against the file's global heap. */
static nde_status check_vlen_heap(hid_t id, bool is_attr, size_t count, char *why,
                                  size_t whylen) {
  nde_status st = NDE_OK;
  hid_t file = -1, op = -1, ftype = -1;
  unsigned char *raw = NULL;
  heap_ctx h = {.fd = -1, .addr = UINT64_MAX};
  int registered = 0;
  if (count == 0) return NDE_OK;
  file = H5Iget_file_id(id);
  raw_file f;
  const int ok = file >= 0 ? raw_file_of(file, &f) : -1;
  if (ok < 0) goto hdf5_fail;
  if (ok == 0) goto out;
  h.fd = f.fd;
  h.base = f.base;
  h.eof = f.eof;
  h.sa = f.sa;
  h.ss = f.ss;
  if (h.sa < 1 || h.sa > 8 || h.ss < 1 || h.ss > 8) {
    snprintf(why, whylen, "unsupported address size %zu or length size %zu", h.sa, h.ss);
    st = NDE_ERR_DATA;
    goto out;
  }
  size_t dsize = 4 + h.sa + 4, bytes;
  if (!nde__mul_size(count, dsize, &bytes) || !(raw = malloc(bytes))) {
    snprintf(why, whylen, "out of memory reading %zu strings", count);
    st = NDE_ERR_NOMEM;
    goto out;
  }
  ftype = is_attr ? H5Aget_type(id) : H5Dget_type(id);
  op = H5Tcreate(H5T_OPAQUE, dsize);
  if (ftype < 0 || op < 0 || H5Tset_tag(op, RAW_TAG) < 0) goto hdf5_fail;
  if (H5Tregister(H5T_PERS_SOFT, RAW_TAG, ftype, op, conv_raw) < 0) goto hdf5_fail;
  registered = 1;
  herr_t rc = is_attr ? H5Aread(id, op, raw) : H5Dread(id, op, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
  if (rc < 0) goto hdf5_fail;
  for (size_t i = 0; i < count; i++) {
    const unsigned char *d = raw + i * dsize;
    uint64_t len = get_le(d, 4), addr = get_le(d + 4, h.sa), idx = get_le(d + 4 + h.sa, 4);
    /* A null descriptor (address 0) is read as no string; any other is looked up in the heap,
     * whatever its length (HDF5 1.10.8 reads object idx even for length 0, without checking
     * that it exists: a SEGV in H5HG_read, found by .ci/fuzz result). */
    if (addr == 0) continue;
    if (addr != h.addr && (st = load_heap(&h, addr, why, whylen)) != NDE_OK) goto out;
    int absent = idx == 0 || idx >= h.n_sizes || h.sizes[idx] == UINT64_MAX;
    if (absent || h.sizes[idx] != len) {
      snprintf(why, whylen, "string %zu is corrupt (length %llu, heap object %llu %s)", i,
               (unsigned long long)len, (unsigned long long)idx,
               absent ? "does not exist" : "has another length");
      st = NDE_ERR_DATA;
      goto out;
    }
  }
  goto out;
hdf5_fail: {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  snprintf(why, whylen, "cannot read strings (HDF5: %s)", h5);
  st = NDE_ERR_IO;
}
out:
  if (registered) H5Tunregister(H5T_PERS_SOFT, RAW_TAG, ftype, op, conv_raw);
  if (op >= 0) H5Tclose(op);
  if (ftype >= 0) H5Tclose(ftype);
  if (file >= 0) H5Fclose(file);
  free(raw);
  free(h.sizes);
  return st;
}

/* Strings beyond these are not names or texts nde writes: refuse them before allocating. */
#define MAX_STRINGS ((size_t)1 << 24)
#define MAX_FIXED_BYTES ((size_t)1 << 28)

nde_status nde__h5_read_strings(hid_t id, bool is_attr, size_t *n, char ***strs, char *why,
                                size_t whylen) {
  nde_status st = NDE_ERR_IO;
  hid_t ftype = -1, space = -1, mtype = -1;
  char **vbuf = NULL, *fbuf = NULL, **ptrs = NULL;
  size_t *lens = NULL, count = 0;
  char tname[64];
  *strs = NULL;
  *n = 0;

  ftype = is_attr ? H5Aget_type(id) : H5Dget_type(id);
  space = is_attr ? H5Aget_space(id) : H5Dget_space(id);
  if (ftype < 0 || space < 0) goto hdf5_fail;
  if (H5Tget_class(ftype) != H5T_STRING) {
    nde__h5_type_name(ftype, tname, sizeof tname);
    snprintf(why, whylen, "expected strings, got %s", tname);
    st = NDE_ERR_DATA;
    goto out;
  }
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank > 1 || rank < 0) {
    snprintf(why, whylen, "expected a list of strings (rank 1), got rank %d", rank);
    st = NDE_ERR_DATA;
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(space);
  if (np < 0) goto hdf5_fail;
  if ((uint64_t)np > MAX_STRINGS) {
    snprintf(why, whylen, "too many strings (expected at most %zu, got %lld)", MAX_STRINGS,
             (long long)np);
    st = NDE_ERR_DATA;
    goto out;
  }
  count = (size_t)np;
  size_t nalloc = count ? count : 1;
  lens = calloc(nalloc, sizeof *lens);
  ptrs = calloc(nalloc, sizeof *ptrs);
  if (!lens || !ptrs) goto nomem;

  mtype = H5Tcopy(H5T_C_S1);
  H5T_cset_t cset = H5Tget_cset(ftype);
  if (mtype < 0 || cset < 0 || H5Tset_cset(mtype, cset) < 0) goto hdf5_fail;
  htri_t is_var = H5Tis_variable_str(ftype);
  if (is_var < 0) goto hdf5_fail;
  if (is_var) {
    if ((st = check_vlen_heap(id, is_attr, count, why, whylen)) != NDE_OK) goto out;
    st = NDE_ERR_IO;
    if (H5Tset_size(mtype, H5T_VARIABLE) < 0) goto hdf5_fail;
    vbuf = calloc(nalloc, sizeof *vbuf);
    if (!vbuf) goto nomem;
    herr_t rc = is_attr ? H5Aread(id, mtype, vbuf)
                        : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, vbuf);
    if (rc < 0) goto hdf5_fail;
    for (size_t i = 0; i < count; i++) {
      ptrs[i] = vbuf[i] ? vbuf[i] : (char *)"";
      lens[i] = trimmed_len(ptrs[i], SIZE_MAX);
    }
  } else {
    size_t sz = H5Tget_size(ftype), stride, bytes;
    if (sz == 0) goto hdf5_fail;
    if (!nde__add_size(sz, 1, &stride) || !nde__mul_size(nalloc, stride, &bytes) ||
        bytes > MAX_FIXED_BYTES) {
      snprintf(why, whylen, "too large (expected at most %zu bytes of strings, got %zu strings "
               "of %zu bytes)", MAX_FIXED_BYTES, count, sz);
      st = NDE_ERR_DATA;
      goto out;
    }
    if (H5Tset_size(mtype, stride) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLTERM) < 0)
      goto hdf5_fail;
    fbuf = calloc(bytes, 1);
    if (!fbuf) goto nomem;
    herr_t rc = is_attr ? H5Aread(id, mtype, fbuf)
                        : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, fbuf);
    if (rc < 0) goto hdf5_fail;
    for (size_t i = 0; i < count; i++) {
      ptrs[i] = fbuf + i * stride;
      lens[i] = trimmed_len(ptrs[i], sz);
    }
  }
  *strs = pack_strings(count, ptrs, lens);
  if (!*strs) goto nomem;
  *n = count;
  st = NDE_OK;
  goto out;

nomem:
  snprintf(why, whylen, "out of memory reading %zu strings", count);
  st = NDE_ERR_NOMEM;
  goto out;
hdf5_fail: {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  snprintf(why, whylen, "cannot read strings (HDF5: %s)", h5);
  st = NDE_ERR_IO;
}
out:
  if (vbuf) {
    if (space >= 0 && mtype >= 0) H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, vbuf);
    free(vbuf);
  }
  free(fbuf);
  free(ptrs);
  free(lens);
  if (mtype >= 0) H5Tclose(mtype);
  if (space >= 0) H5Sclose(space);
  if (ftype >= 0) H5Tclose(ftype);
  return st;
}

void nde__data_err_out(const nde__err *e, nde_error *out) {
  if (!out) return;
  out->status = e ? e->status : NDE_OK;
  snprintf(out->msg, sizeof out->msg, "%s", e && e->status != NDE_OK ? nde__err_msg(e) : "");
}

const char *nde__fmt_double(char *buf, size_t n, double x) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  return buf;
}

/* ---- names ---- */

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int index_grow(nde__index *ix) {
  size_t cap = ix->cap ? 2 * ix->cap : 16;
  if (cap < ix->cap) return -1;
  const char **key = calloc(cap, sizeof *key);
  size_t *val = calloc(cap, sizeof *val);
  if (!key || !val) {
    free(key);
    free(val);
    return -1;
  }
  for (size_t i = 0; i < ix->cap; i++) {
    if (!ix->key[i]) continue;
    size_t j = (size_t)fnv1a(ix->key[i]) & (cap - 1);
    while (key[j]) j = (j + 1) & (cap - 1);
    key[j] = ix->key[i];
    val[j] = ix->val[i];
  }
  free(ix->key);
  free(ix->val);
  ix->key = key;
  ix->val = val;
  ix->cap = cap;
  return 0;
}

int nde__index_add(nde__index *ix, const char *name, size_t val, size_t *old) {
  if ((ix->n + 1) * 2 > ix->cap && index_grow(ix) != 0) return -1;
  size_t j = (size_t)fnv1a(name) & (ix->cap - 1);
  while (ix->key[j]) {
    if (strcmp(ix->key[j], name) == 0) {
      if (old) *old = ix->val[j];
      return 1;
    }
    j = (j + 1) & (ix->cap - 1);
  }
  ix->key[j] = name;
  ix->val[j] = val;
  ix->n++;
  return 0;
}

size_t nde__index_find(const nde__index *ix, const char *name) {
  if (!ix->cap) return SIZE_MAX;
  size_t j = (size_t)fnv1a(name) & (ix->cap - 1);
  while (ix->key[j]) {
    if (strcmp(ix->key[j], name) == 0) return ix->val[j];
    j = (j + 1) & (ix->cap - 1);
  }
  return SIZE_MAX;
}

void nde__index_free(nde__index *ix) {
  free(ix->key);
  free(ix->val);
  memset(ix, 0, sizeof *ix);
}

void nde__name_list(char *buf, size_t max, size_t n, const char *const *names) {
  size_t k = 0;
  buf[0] = '\0';
  for (size_t j = 0; j < n && k + 1 < max; j++) {
    int w = snprintf(buf + k, max - k, "%s%s", j ? ", " : "", names[j]);
    if (w < 0) break;
    k += (size_t)w;
    if (k >= max) {
      /* Cut: end with an ellipsis that says more names follow. */
      if (max > 5) snprintf(buf + max - 5, 5, " ...");
      break;
    }
  }
}

/* ---- checks of a series ---- */

static nde_status check_times(nde__err *e, const char *file, const char *dset, size_t n,
                              const double *t, const char *what) {
  char a[40], b[40];
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(t[i]))
      return nde__derrf(e, NDE_ERR_DATA,
                        "%s:%s: non-finite %s at index %zu (expected a finite number, got %g)",
                        file, dset, what, i, t[i]);
    if (i > 0 && !(t[i] > t[i - 1]))
      return nde__derrf(e, NDE_ERR_DATA,
                        "%s:%s: times not strictly increasing at index %zu (expected t[%zu] > "
                        "t[%zu] = %s, got t[%zu] = %s)",
                        file, dset, i, i, i - 1, nde__fmt_double(a, sizeof a, t[i - 1]), i,
                        nde__fmt_double(b, sizeof b, t[i]));
  }
  return NDE_OK;
}

static void column_label(char *buf, size_t n, size_t c, const char *const *names) {
  if (names)
    snprintf(buf, n, "column %zu (\"%s\")", c, names[c]);
  else
    snprintf(buf, n, "column %zu", c);
}

static nde_status check_obs(nde__err *e, const char *file, const char *dset, size_t n, size_t d,
                            const double *y, const char *const *names, size_t *n_nan) {
  char label[200];
  size_t nan = 0;
  for (size_t i = 0; i < n; i++) {
    for (size_t c = 0; c < d; c++) {
      double v = y[i * d + c];
      if (isinf(v)) {
        column_label(label, sizeof label, c, names);
        return nde__derrf(e, NDE_ERR_DATA,
                          "%s:%s: infinite value at row %zu, %s (expected a finite number, or "
                          "NaN for a missing value, got %g)",
                          file, dset, i, label, v);
      }
      if (isnan(v)) nan++;
    }
  }
  if (nan) {
    /* A column is all NaN when its count of NaN equals the row count: count per column in one
     * pass over the rows (cache friendly for wide files). */
    size_t *cnt = calloc(d, sizeof *cnt);
    if (!cnt) return nde__derrf(e, NDE_ERR_NOMEM, "%s:%s: out of memory", file, dset);
    for (size_t i = 0; i < n; i++)
      for (size_t c = 0; c < d; c++) cnt[c] += isnan(y[i * d + c]) != 0;
    for (size_t c = 0; c < d; c++)
      if (cnt[c] == n) {
        free(cnt);
        column_label(label, sizeof label, c, names);
        return nde__derrf(e, NDE_ERR_DATA,
                          "%s:%s: %s is all NaN (expected at least one observed value, got %zu "
                          "NaN of %zu)",
                          file, dset, label, n, n);
      }
    free(cnt);
  }
  if (n_nan) *n_nan = nan;
  return NDE_OK;
}

/* Empty or repeated names, in linear time. */
static nde_status check_names(nde__err *e, const char *file, const char *dset, const char *attr,
                              size_t d, const char *const *names, const char *what) {
  nde__index ix = {0};
  nde_status st = NDE_OK;
  for (size_t c = 0; c < d && st == NDE_OK; c++) {
    size_t k = 0;
    if (!names[c] || !names[c][0]) {
      st = nde__derrf(e, NDE_ERR_DATA, "%s:%s: %s[%zu] is empty (expected the name of %s %s)",
                      file, dset, attr, c, strchr("aeiou", what[0]) ? "an" : "a", what);
      break;
    }
    int r = nde__index_add(&ix, names[c], c, &k);
    if (r < 0)
      st = nde__derrf(e, NDE_ERR_NOMEM, "%s:%s: out of memory", file, dset);
    else if (r > 0)
      st = nde__derrf(e, NDE_ERR_DATA,
                      "%s:%s: %s[%zu] = \"%s\" repeats %s[%zu] (expected each %s named at most "
                      "once)",
                      file, dset, attr, c, names[c], attr, k, what);
  }
  nde__index_free(&ix);
  return st;
}

static nde_status check_per_column(nde__err *e, const char *file, const char *dset,
                                   const char *attr, size_t d, const double *x, int positive) {
  for (size_t c = 0; c < d; c++) {
    double v = x[c];
    if (isnan(v)) continue;
    if (isinf(v) || v < 0 || (positive && v == 0))
      return nde__derrf(e, NDE_ERR_DATA,
                        "%s:%s: attribute %s[%zu] is invalid (expected a finite value %s, or NaN "
                        "for unknown, got %g)",
                        file, dset, attr, c, positive ? "> 0" : ">= 0", v);
  }
  return NDE_OK;
}

static nde_status check_inputs(nde__err *e, const char *file, const char *ut, const char *up,
                               const nde_series_extra *x) {
  nde_status st;
  if (x->n_u == 0)
    return nde__derrf(e, NDE_ERR_DATA, "%s:%s: no input times (expected at least 1, got 0)",
                      file, ut);
  if (!x->input_names)
    return nde__derrf(e, NDE_ERR_DATA,
                      "%s:%s: no attribute input_names (expected %zu names, one per column)",
                      file, up, x->m);
  if ((st = check_names(e, file, up, "input_names", x->m, x->input_names, "input")))
    return st;
  if ((st = check_times(e, file, ut, x->n_u, x->u_t, "time"))) return st;
  for (size_t i = 0; i < x->n_u; i++)
    for (size_t k = 0; k < x->m; k++) {
      double v = x->u[i * x->m + k];
      if (!isfinite(v))
        return nde__derrf(e, NDE_ERR_DATA,
                          "%s:%s: non-finite input at row %zu, column %zu (\"%s\") (expected a "
                          "finite number: inputs have no missing values, got %g)",
                          file, up, i, k, x->input_names[k], v);
    }
  /* Whether the grid must cover the observations depends on the model (an input declared hold
   * keeps its end values outside its samples): the model's binding checks it
   * (nde__traj_binding). */
  return NDE_OK;
}

nde_status nde__check_series(nde__err *e, const char *file, const char *group,
                             const nde_series *s, const nde_series_extra *x, size_t *n_nan) {
  static const nde_series_extra none;
  if (!x) x = &none;
  const char *g = group && group[0] ? group : "/";
  char *tp = nde__h5_join(g, "t"), *yp = nde__h5_join(g, "y");
  char *ut = nde__h5_join(g, "inputs/t"), *up = nde__h5_join(g, "inputs/u");
  nde_status st = NDE_OK;
  if (!tp || !yp || !ut || !up) {
    st = nde__derrf(e, NDE_ERR_NOMEM, "%s:%s: out of memory", file, g);
    goto out;
  }
  if (s->n == 0 || s->d == 0) {
    st = nde__derrf(e, NDE_ERR_DATA,
                    "%s:%s: empty series (expected N >= 1 times and D >= 1 columns, got [%zu, "
                    "%zu])",
                    file, yp, s->n, s->d);
    goto out;
  }
  if ((st = check_times(e, file, tp, s->n, s->t, "time"))) goto out;
  if (s->names &&
      (st = check_names(e, file, yp, "state_names", s->d, s->names, "state")))
    goto out;
  if (s->noise_std && (st = check_per_column(e, file, yp, "noise_std", s->d, s->noise_std, 0)))
    goto out;
  if (x->sigma && (st = check_per_column(e, file, yp, "sigma", s->d, x->sigma, 1))) goto out;
  if ((st = check_obs(e, file, yp, s->n, s->d, s->y, s->names, n_nan))) goto out;
  if (x->m && (st = check_inputs(e, file, ut, up, x))) goto out;
  if (x->n_consts) {
    if ((st = check_names(e, file, g, "constant", x->n_consts, x->const_names, "constant")))
      goto out;
    for (size_t k = 0; k < x->n_consts; k++)
      if (!isfinite(x->consts[k])) {
        st = nde__derrf(e, NDE_ERR_DATA,
                        "%s:%s: attribute %s is not finite (expected a finite number, the "
                        "per-series constant %s, got %g)",
                        file, g, x->const_names[k], x->const_names[k], x->consts[k]);
        goto out;
      }
  }
out:
  free(tp);
  free(yp);
  free(ut);
  free(up);
  return st;
}

nde_status nde__h5_open_ro(const char *path, hid_t *fid, nde__err *e) {
  *fid = -1;
  struct stat sb;
  if (stat(path, &sb) != 0)
    return nde__derrf(e, NDE_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return nde__derrf(e, NDE_ERR_IO, "%s: cannot open (expected an HDF5 file, got %s)", path,
                      nde__file_kind(sb.st_mode));
  if (H5Fis_hdf5(path) == 0)
    return nde__derrf(e, NDE_ERR_DATA,
                      "%s: not an HDF5 file (expected the HDF5 signature, got %lld bytes without "
                      "it)",
                      path, (long long)sb.st_size);
  const hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    char h5[256];
    nde__h5_last_error(h5, sizeof h5);
    return nde__derrf(e, NDE_ERR_IO, "%s: cannot open (HDF5: %s)", path, h5);
  }
  char why[300];
  const nde_status st = check_local_heaps(f, why, sizeof why);
  if (st != NDE_OK) {
    H5Fclose(f);
    return nde__derrf(e, st, "%s: %s", path, why);
  }
  *fid = f;
  return NDE_OK;
}
