//! A filesystem that can cut the power: an in-memory FUSE filesystem that keeps, for every file,
//! what the storage holds (durable) apart from what processes see (current), so that a test loses
//! exactly what a phone's storage loses when its battery dies.
//!
//! # Semantics
//!
//! - One flat directory of regular files: no subdirectories, links or special files.
//! - A write or a truncate changes a file's current content only. `fsync` or `fdatasync` of a
//!   file makes its whole current content durable (and nothing else of other files).
//! - Namespace changes (create, unlink, rename) are pending until the next `fsync` or
//!   `fdatasync` of any file or `fsync` of the directory (`fsyncdir`), which makes the whole
//!   current namespace durable at once, like the commit of a journaling filesystem. That commit
//!   carries names only: a file whose creation was committed by another file's fsync is durable
//!   with the content of its own last fsync (empty if it never had one).
//! - Mode, owner and times are bookkeeping, not part of the durable state: a file that survives a
//!   cut keeps the last ones set. There is no access time of its own (it reads as the
//!   modification time).
//! - [`PowerFs::cut_power`]: from that instant every request that reads or changes a file or a
//!   name fails with `EIO`, so nothing more becomes durable. [`PowerFs::restart`] then unmounts,
//!   reverts every file and the namespace to their durable state and mounts a fresh filesystem,
//!   so the kernel's page cache and attribute cache of the old one are gone too.
//! - No kernel writeback cache: fuser does not ask the kernel for it, so the kernel writes
//!   through and every `write(2)` reaches the filesystem before it returns. Shared writable
//!   `mmap` (SQLite's `-shm`) works through the page cache: its dirty pages reach the filesystem
//!   at `msync`, `munmap`, `fsync` or writeback like any write, and a cut loses them like any
//!   unsynced write.
//! - POSIX locks stay in the kernel (the filesystem does not take them), which serves processes
//!   of one machine.
//!
//! # Mounting
//!
//! With fuser's own pure-Rust mount (no libfuse): as root it calls `mount(2)` on a `/dev/fuse`
//! descriptor itself; without the right to, fuser falls back to `fusermount3`. One thread of the
//! test process serves the requests. Whatever [`PowerFs`] mounted it unmounts itself, also when
//! dropped during a panic: `umount(2)`, or a lazy detach if the mount is still busy.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

mod volume;

use volume::{AttrChange, Owner, ROOT, Volume};

/// How long the kernel may keep names and attributes: they change only through the kernel
/// itself, and a restart mounts afresh.
const TTL: Duration = Duration::from_secs(1);

/// A mounted power-cut filesystem. See the module documentation for what survives a cut.
pub struct PowerFs {
    mountpoint: PathBuf,
    volume: Arc<Mutex<Volume>>,
    session: Option<BackgroundSession>,
}

impl PowerFs {
    /// Mounts an empty filesystem on the existing directory `mountpoint`; its root takes the
    /// directory's mode and owner.
    pub fn mount(mountpoint: impl AsRef<Path>) -> io::Result<PowerFs> {
        let mountpoint = mountpoint.as_ref().to_path_buf();
        let dir = std::fs::metadata(&mountpoint)?;
        let root = Owner {
            perm: (dir.mode() & 0o7777) as u16,
            uid: dir.uid(),
            gid: dir.gid(),
        };
        let volume = Arc::new(Mutex::new(Volume::new(root)));
        let session = Some(spawn(&mountpoint, &volume)?);
        Ok(PowerFs {
            mountpoint,
            volume,
            session,
        })
    }

    /// Where the filesystem is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: from now on every request fails with `EIO` and nothing more becomes
    /// durable, until [`PowerFs::restart`].
    pub fn cut_power(&self) {
        lock(&self.volume).cut();
    }

    /// Boots again after a cut (cutting the power first if it is still on): unmounts, reverts
    /// everything to its durable state and mounts a fresh filesystem at the same place. Every
    /// file of the old mount must be closed (its processes gone), or the unmount fails.
    pub fn restart(&mut self) -> io::Result<()> {
        self.cut_power();
        if let Some(session) = self.session.take() {
            unmount(session, &self.mountpoint)?;
        }
        lock(&self.volume).revert();
        self.session = Some(spawn(&self.mountpoint, &self.volume)?);
        Ok(())
    }
}

impl Drop for PowerFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && let Err(e) = unmount(session, &self.mountpoint)
        {
            eprintln!(
                "powerfs: {} could not be unmounted ({e}); detached lazily",
                self.mountpoint.display()
            );
        }
    }
}

fn spawn(mountpoint: &Path, volume: &Arc<Mutex<Volume>>) -> io::Result<BackgroundSession> {
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("powerfs".into())];
    let ops = Ops {
        volume: volume.clone(),
    };
    fuser::spawn_mount(ops, mountpoint, &config)
}

/// Unmounts and waits for the serving thread; if the mount is busy, detaches it lazily (the
/// kernel drops it when its last file closes) and returns the error.
fn unmount(session: BackgroundSession, mountpoint: &Path) -> io::Result<()> {
    session
        .umount_and_join()
        .inspect_err(|_| detach(mountpoint))
}

fn detach(mountpoint: &Path) {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: umount2(2) with a valid NUL-terminated path; it touches no memory of ours.
    unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
}

fn lock(volume: &Mutex<Volume>) -> MutexGuard<'_, Volume> {
    volume.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The FUSE requests, answered from the shared [`Volume`]. Each request holds the volume's lock
/// for all its work, so a cut falls between two requests, never inside one.
struct Ops {
    volume: Arc<Mutex<Volume>>,
}

impl Ops {
    fn volume(&self) -> MutexGuard<'_, Volume> {
        lock(&self.volume)
    }
}

/// The one directory is the root: names live nowhere else.
fn in_root(parent: INodeNo) -> Result<(), Errno> {
    if parent.0 == ROOT {
        Ok(())
    } else {
        Err(Errno::ENOTDIR)
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for Ops {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match in_root(parent).and_then(|()| self.volume().lookup(name)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.volume().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            size,
            perm: mode.map(|m| (m & 0o7777) as u16),
            uid,
            gid,
            mtime: mtime.map(time),
        };
        match self.volume().set_attr(ino.0, change) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match in_root(parent).and_then(|()| self.volume().unlink(name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = in_root(parent)
            .and_then(|()| in_root(newparent))
            .and_then(|()| {
                if flags.difference(RenameFlags::RENAME_NOREPLACE).is_empty() {
                    Ok(!flags.contains(RenameFlags::RENAME_NOREPLACE))
                } else {
                    Err(Errno::EINVAL)
                }
            })
            .and_then(|replace| self.volume().rename(name, newname, replace));
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.volume().open(ino.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.volume().read(ino.0, offset, size) {
            Ok(bytes) => reply.data(bytes),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.volume().write(ino.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.volume().release(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.volume().fsync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match in_root(ino).and_then(|()| self.volume().entries()) {
            Ok(entries) => entries,
            Err(e) => return reply.error(e),
        };
        let dots = [
            (ROOT, FileType::Directory, OsStr::new(".")),
            (ROOT, FileType::Directory, OsStr::new("..")),
        ];
        let files = entries
            .iter()
            .map(|(ino, name)| (*ino, FileType::RegularFile, name.as_os_str()));
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (index, (ino, kind, name)) in dots.into_iter().chain(files).enumerate().skip(skip) {
            // The offset of an entry is where the next read starts.
            if reply.add(INodeNo(ino), index as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match in_root(ino).and_then(|()| self.volume().fsync_dir()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let result = in_root(parent).and_then(|()| {
            if mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::EPERM);
            }
            let owner = Owner {
                perm: (mode & !umask & 0o7777) as u16,
                uid: req.uid(),
                gid: req.gid(),
            };
            self.volume().create(name, owner)
        });
        match result {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}
