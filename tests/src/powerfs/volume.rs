//! The filesystem's state without FUSE: the current and durable content and names, and the
//! power switch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType, INodeNo};

/// The inode of the one directory.
pub const ROOT: u64 = 1;

/// Largest file the volume keeps (it keeps everything twice, in memory).
const MAX_FILE_SIZE: usize = 1 << 30;

/// Mode bits and owner of a new file or of the root.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    /// Permission bits (`0o7777` at most).
    pub perm: u16,
    /// Owning user.
    pub uid: u32,
    /// Owning group.
    pub gid: u32,
}

/// What a `setattr` changes; `None` keeps a field.
#[derive(Debug, Default)]
pub struct AttrChange {
    /// A new length (truncating or zero-extending).
    pub size: Option<u64>,
    /// New permission bits.
    pub perm: Option<u16>,
    /// New owning user.
    pub uid: Option<u32>,
    /// New owning group.
    pub gid: Option<u32>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
}

/// One file: what processes see and what the storage holds.
struct File {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Covers every byte of `current` that may differ from `durable` (or lies past its end).
    unsynced: Option<Range<usize>>,
    owner: Owner,
    mtime: SystemTime,
    ctime: SystemTime,
    /// Open handles: an unlinked file stays readable until its last one is released.
    handles: u32,
}

impl File {
    fn new(owner: Owner) -> File {
        let now = SystemTime::now();
        File {
            current: Vec::new(),
            durable: Vec::new(),
            unsynced: None,
            owner,
            mtime: now,
            ctime: now,
            handles: 0,
        }
    }

    fn changed(&mut self, range: Range<usize>) {
        self.unsynced = Some(match self.unsynced.take() {
            Some(r) => r.start.min(range.start)..r.end.max(range.end),
            None => range,
        });
        self.mtime = SystemTime::now();
        self.ctime = self.mtime;
    }

    fn write(&mut self, at: Range<usize>, data: &[u8]) {
        let len = self.current.len();
        if at.end > len {
            self.current.resize(at.end, 0);
        }
        self.current[at.clone()].copy_from_slice(data);
        self.changed(at.start.min(len)..at.end);
    }

    fn set_len(&mut self, new_len: usize) {
        let len = self.current.len();
        self.current.resize(new_len, 0);
        self.changed(len.min(new_len)..len.max(new_len));
    }

    fn sync(&mut self) {
        let len = self.current.len();
        self.durable.resize(len, 0);
        if let Some(range) = self.unsynced.take() {
            let range = range.start.min(len)..range.end.min(len);
            self.durable[range.clone()].copy_from_slice(&self.current[range]);
        }
    }

    fn revert(&mut self) {
        self.current.clone_from(&self.durable);
        self.unsynced = None;
        self.handles = 0;
    }
}

/// The whole filesystem: one directory of files, its current and durable names, and whether
/// the power is on.
pub struct Volume {
    powered: bool,
    root: Owner,
    root_time: SystemTime,
    names: BTreeMap<OsString, u64>,
    durable_names: BTreeMap<OsString, u64>,
    files: HashMap<u64, File>,
    next_ino: u64,
}

impl Volume {
    /// An empty volume, powered, whose root has `root`'s mode and owner.
    pub fn new(root: Owner) -> Volume {
        Volume {
            powered: true,
            root,
            root_time: SystemTime::now(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            files: HashMap::new(),
            next_ino: ROOT + 1,
        }
    }

    /// The attributes of the file called `name`.
    pub fn lookup(&self, name: &OsStr) -> Result<FileAttr, Errno> {
        self.powered()?;
        let ino = *self.names.get(name).ok_or(Errno::ENOENT)?;
        self.attr(ino)
    }

    /// The attributes of inode `ino` (the root or a file).
    pub fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        self.powered()?;
        if ino == ROOT {
            return Ok(attr(
                ROOT,
                FileType::Directory,
                0,
                2,
                self.root,
                self.root_time,
                self.root_time,
            ));
        }
        let file = self.file(ino)?;
        let linked = self.names.values().any(|&i| i == ino);
        Ok(attr(
            ino,
            FileType::RegularFile,
            file.current.len() as u64,
            u32::from(linked),
            file.owner,
            file.mtime,
            file.ctime,
        ))
    }

    /// Creates an empty file called `name` and opens it (a pending namespace change).
    pub fn create(&mut self, name: &OsStr, owner: Owner) -> Result<FileAttr, Errno> {
        self.powered()?;
        if self.names.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut file = File::new(owner);
        file.handles = 1;
        self.files.insert(ino, file);
        self.names.insert(name.to_os_string(), ino);
        self.attr(ino)
    }

    /// Opens file `ino`.
    pub fn open(&mut self, ino: u64) -> Result<(), Errno> {
        self.powered()?;
        self.file_mut(ino)?.handles += 1;
        Ok(())
    }

    /// Closes one handle of file `ino`; an unlinked file goes with its last one.
    pub fn release(&mut self, ino: u64) -> Result<(), Errno> {
        self.powered()?;
        let file = self.file_mut(ino)?;
        file.handles = file.handles.saturating_sub(1);
        self.collect();
        Ok(())
    }

    /// Up to `size` bytes of file `ino`'s current content from `offset`.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], Errno> {
        self.powered()?;
        let content = &self.file(ino)?.current;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(content.len());
        let end = start.saturating_add(size as usize).min(content.len());
        Ok(&content[start..end])
    }

    /// Writes `data` at `offset` of file `ino`'s current content (zero-filling any gap).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.powered()?;
        let at = span(offset, data.len())?;
        let written = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        self.file_mut(ino)?.write(at, data);
        Ok(written)
    }

    /// Applies a `setattr` to file `ino`; a new size changes its current content only.
    pub fn set_attr(&mut self, ino: u64, change: AttrChange) -> Result<FileAttr, Errno> {
        self.powered()?;
        if ino == ROOT {
            return Err(Errno::EPERM);
        }
        let new_len = change.size.map(|size| span(size, 0)).transpose()?;
        let file = self.file_mut(ino)?;
        if let Some(len) = new_len {
            file.set_len(len.start);
        }
        file.owner.perm = change.perm.unwrap_or(file.owner.perm);
        file.owner.uid = change.uid.unwrap_or(file.owner.uid);
        file.owner.gid = change.gid.unwrap_or(file.owner.gid);
        file.mtime = change.mtime.unwrap_or(file.mtime);
        file.ctime = SystemTime::now();
        self.attr(ino)
    }

    /// Removes the name `name` (a pending namespace change).
    pub fn unlink(&mut self, name: &OsStr) -> Result<(), Errno> {
        self.powered()?;
        self.names.remove(name).ok_or(Errno::ENOENT)?;
        self.collect();
        Ok(())
    }

    /// Renames `from` to `to`, replacing a file of that name if `replace` (a pending
    /// namespace change).
    pub fn rename(&mut self, from: &OsStr, to: &OsStr, replace: bool) -> Result<(), Errno> {
        self.powered()?;
        if !self.names.contains_key(from) {
            return Err(Errno::ENOENT);
        }
        if !replace && self.names.contains_key(to) {
            return Err(Errno::EEXIST);
        }
        if let Some(ino) = self.names.remove(from) {
            self.names.insert(to.to_os_string(), ino);
        }
        self.collect();
        Ok(())
    }

    /// `fsync` of file `ino`: its current content becomes durable, and so do all names.
    pub fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        self.powered()?;
        self.file_mut(ino)?.sync();
        self.commit_names();
        Ok(())
    }

    /// `fsync` of the directory: all names become durable.
    pub fn fsync_dir(&mut self) -> Result<(), Errno> {
        self.powered()?;
        self.commit_names();
        Ok(())
    }

    /// The current names with their inodes, sorted by name.
    pub fn entries(&self) -> Result<Vec<(u64, OsString)>, Errno> {
        self.powered()?;
        Ok(self
            .names
            .iter()
            .map(|(name, &ino)| (ino, name.clone()))
            .collect())
    }

    /// Cuts the power: every call fails with `EIO` until [`Volume::revert`].
    pub fn cut(&mut self) {
        self.powered = false;
    }

    /// Brings back the durable state (names and contents; no handle is open any more) and
    /// switches the power on.
    pub fn revert(&mut self) {
        self.names.clone_from(&self.durable_names);
        for file in self.files.values_mut() {
            file.revert();
        }
        self.collect();
        self.powered = true;
    }

    fn powered(&self) -> Result<(), Errno> {
        if self.powered {
            Ok(())
        } else {
            Err(Errno::EIO)
        }
    }

    fn file(&self, ino: u64) -> Result<&File, Errno> {
        self.files.get(&ino).ok_or(Errno::ENOENT)
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut File, Errno> {
        self.files.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn commit_names(&mut self) {
        self.durable_names.clone_from(&self.names);
        self.collect();
    }

    /// Forgets files that no name (current or durable) and no handle keeps.
    fn collect(&mut self) {
        let named: HashSet<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        self.files
            .retain(|ino, file| file.handles > 0 || named.contains(ino));
    }
}

/// The byte range `offset..offset + len` as indexes, if the file may grow that far.
fn span(offset: u64, len: usize) -> Result<Range<usize>, Errno> {
    let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
    let end = start
        .checked_add(len)
        .filter(|&end| end <= MAX_FILE_SIZE)
        .ok_or(Errno::EFBIG)?;
    Ok(start..end)
}

fn attr(
    ino: u64,
    kind: FileType,
    size: u64,
    nlink: u32,
    owner: Owner,
    mtime: SystemTime,
    ctime: SystemTime,
) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime,
        crtime: ctime,
        kind,
        perm: owner.perm,
        nlink,
        uid: owner.uid,
        gid: owner.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const OWNER: Owner = Owner {
        perm: 0o644,
        uid: 0,
        gid: 0,
    };

    fn volume() -> Volume {
        Volume::new(Owner {
            perm: 0o755,
            ..OWNER
        })
    }

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn ino(v: &Volume, n: &str) -> u64 {
        v.lookup(name(n)).unwrap().ino.0
    }

    fn content(v: &Volume, n: &str) -> Vec<u8> {
        let ino = ino(v, n);
        v.read(ino, 0, u32::MAX).unwrap().to_vec()
    }

    /// A volume with `db` holding `durable` on the storage.
    fn with_synced(durable: &[u8]) -> Volume {
        let mut v = volume();
        let ino = v.create(name("db"), OWNER).unwrap().ino.0;
        v.write(ino, 0, durable).unwrap();
        v.fsync(ino).unwrap();
        v
    }

    #[test]
    fn an_unsynced_write_is_lost_and_a_synced_one_kept() {
        let mut v = with_synced(b"one");
        let db = ino(&v, "db");
        v.write(db, 3, b" two").unwrap();
        assert_eq!(content(&v, "db"), b"one two", "processes see the write");
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"one");

        v.write(db, 3, b" three").unwrap();
        v.fsync(db).unwrap();
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"one three");
    }

    #[test]
    fn a_truncate_is_lost_unless_synced() {
        let mut v = with_synced(b"0123456789");
        let db = ino(&v, "db");
        let shorter = AttrChange {
            size: Some(4),
            ..AttrChange::default()
        };
        v.set_attr(db, shorter).unwrap();
        assert_eq!(v.attr(db).unwrap().size, 4);
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"0123456789");

        let longer = AttrChange {
            size: Some(6),
            ..AttrChange::default()
        };
        v.set_attr(
            db,
            AttrChange {
                size: Some(2),
                ..AttrChange::default()
            },
        )
        .unwrap();
        v.set_attr(db, longer).unwrap();
        v.fsync(db).unwrap();
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"01\0\0\0\0");
    }

    #[test]
    fn fsync_of_one_file_leaves_the_others_unsynced() {
        let mut v = with_synced(b"db");
        let db = ino(&v, "db");
        let wal = v.create(name("wal"), OWNER).unwrap().ino.0;
        v.write(wal, 0, b"frames").unwrap();
        v.write(db, 2, b" more").unwrap();
        v.fsync(wal).unwrap();
        v.cut();
        v.revert();
        assert_eq!(content(&v, "wal"), b"frames");
        assert_eq!(content(&v, "db"), b"db");
    }

    #[test]
    fn a_created_file_needs_a_commit_and_keeps_only_its_own_synced_content() {
        let mut v = with_synced(b"db");
        let db = ino(&v, "db");
        let lost = v.create(name("lost"), OWNER).unwrap().ino.0;
        v.write(lost, 0, b"never committed").unwrap();
        v.cut();
        v.revert();
        assert_eq!(v.lookup(name("lost")).unwrap_err(), Errno::ENOENT);

        let empty = v.create(name("empty"), OWNER).unwrap().ino.0;
        v.write(empty, 0, b"not synced").unwrap();
        v.fsync(db).unwrap();
        v.cut();
        v.revert();
        assert_eq!(
            content(&v, "empty"),
            b"",
            "the name is durable, the content not"
        );
    }

    #[test]
    fn an_unlink_is_undone_by_a_cut_unless_committed() {
        let mut v = with_synced(b"kept");
        v.unlink(name("db")).unwrap();
        assert_eq!(v.lookup(name("db")).unwrap_err(), Errno::ENOENT);
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"kept");

        v.unlink(name("db")).unwrap();
        v.fsync_dir().unwrap();
        v.cut();
        v.revert();
        assert_eq!(v.lookup(name("db")).unwrap_err(), Errno::ENOENT);
        assert!(v.files.is_empty(), "nothing keeps the file");
    }

    #[test]
    fn an_unlinked_open_file_lives_until_released() {
        let mut v = with_synced(b"open");
        let db = ino(&v, "db");
        v.unlink(name("db")).unwrap();
        v.fsync_dir().unwrap();
        assert_eq!(v.read(db, 0, 10).unwrap(), b"open");
        assert_eq!(v.attr(db).unwrap().nlink, 0);
        v.release(db).unwrap();
        assert_eq!(v.read(db, 0, 10).unwrap_err(), Errno::ENOENT);
    }

    #[test]
    fn a_rename_over_a_file_is_undone_by_a_cut_unless_committed() {
        let mut v = with_synced(b"old");
        let new = v.create(name("new"), OWNER).unwrap().ino.0;
        v.write(new, 0, b"new").unwrap();
        v.fsync(new).unwrap();
        assert_eq!(
            v.rename(name("new"), name("db"), false).unwrap_err(),
            Errno::EEXIST
        );
        v.rename(name("new"), name("db"), true).unwrap();
        assert_eq!(content(&v, "db"), b"new");
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"old");
        assert_eq!(content(&v, "new"), b"new");

        v.rename(name("new"), name("db"), true).unwrap();
        v.fsync_dir().unwrap();
        v.cut();
        v.revert();
        assert_eq!(content(&v, "db"), b"new");
        assert_eq!(v.lookup(name("new")).unwrap_err(), Errno::ENOENT);
        assert_eq!(v.files.len(), 1, "the replaced file is gone");
    }

    #[test]
    fn after_a_cut_everything_fails_and_nothing_becomes_durable() {
        let mut v = with_synced(b"before");
        let db = ino(&v, "db");
        v.write(db, 0, b"BEFORE").unwrap();
        v.cut();
        assert_eq!(v.write(db, 0, b"after").unwrap_err(), Errno::EIO);
        assert_eq!(v.fsync(db).unwrap_err(), Errno::EIO);
        assert_eq!(v.fsync_dir().unwrap_err(), Errno::EIO);
        assert_eq!(v.read(db, 0, 6).unwrap_err(), Errno::EIO);
        assert_eq!(v.lookup(name("db")).unwrap_err(), Errno::EIO);
        assert_eq!(v.create(name("x"), OWNER).unwrap_err(), Errno::EIO);
        assert_eq!(v.unlink(name("db")).unwrap_err(), Errno::EIO);
        v.revert();
        assert_eq!(content(&v, "db"), b"before");
    }

    #[test]
    fn writes_past_the_largest_file_are_refused() {
        let mut v = with_synced(b"");
        let db = ino(&v, "db");
        let past = MAX_FILE_SIZE as u64;
        assert_eq!(v.write(db, past, b"x").unwrap_err(), Errno::EFBIG);
        assert_eq!(v.write(db, u64::MAX, b"x").unwrap_err(), Errno::EFBIG);
    }

    /// Random writes, truncates, syncs and cuts against a plain model that copies the whole
    /// file at every sync: the tracked ranges lose nothing.
    #[test]
    fn only_changed_ranges_are_copied_yet_durable_equals_current_after_sync() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut v = with_synced(b"");
        let db = ino(&v, "db");
        let (mut current, mut durable) = (Vec::<u8>::new(), Vec::<u8>::new());
        for _ in 0..5_000 {
            match rng.random_range(0..10) {
                0..=4 => {
                    let offset = rng.random_range(0..300usize);
                    let data: Vec<u8> =
                        (0..rng.random_range(1..40)).map(|_| rng.random()).collect();
                    v.write(db, offset as u64, &data).unwrap();
                    if current.len() < offset + data.len() {
                        current.resize(offset + data.len(), 0);
                    }
                    current[offset..offset + data.len()].copy_from_slice(&data);
                }
                5 | 6 => {
                    let len = rng.random_range(0..320usize);
                    let change = AttrChange {
                        size: Some(len as u64),
                        ..AttrChange::default()
                    };
                    v.set_attr(db, change).unwrap();
                    current.resize(len, 0);
                }
                7 | 8 => {
                    v.fsync(db).unwrap();
                    durable.clone_from(&current);
                }
                _ => {
                    v.cut();
                    v.revert();
                    current.clone_from(&durable);
                }
            }
            assert_eq!(content(&v, "db"), current);
        }
    }
}
